# One VM running `docker compose up -d` of this repository, on a network of its own whose firewall lets in
# only allowed_source_ranges, and only on SSH and the proxy's 443 (and 80, which redirects to it and answers
# ACME challenges): the one port docker-compose.yml publishes beyond the VM. The VM's service account may
# only write logs and metrics; SSH takes the one key given, project-wide keys are refused.

resource "google_compute_network" "churn" {
  name                    = "${var.name}-net"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "churn" {
  name                     = "${var.name}-subnet"
  region                   = var.region
  network                  = google_compute_network.churn.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "ingress" {
  name        = "${var.name}-ingress"
  network     = google_compute_network.churn.id
  description = "SSH and the proxy's HTTPS (and HTTP, which redirects), from allowed_source_ranges only"
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = var.allowed_source_ranges
  target_tags   = ["${var.name}-vm"]

  allow {
    protocol = "tcp"
    ports    = ["22", "80", "443"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Least privilege: no project roles beyond writing its own logs and metrics.
resource "google_service_account" "vm" {
  account_id   = "${var.name}-vm"
  display_name = "churn VM (logs and metrics only)"
}

resource "google_project_iam_member" "vm_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.vm.email}"
}

resource "google_project_iam_member" "vm_metrics" {
  project = var.project_id
  role    = "roles/monitoring.metricWriter"
  member  = "serviceAccount:${google_service_account.vm.email}"
}

resource "google_compute_address" "vm" {
  name   = "${var.name}-ip"
  region = var.region
}

resource "google_compute_instance" "vm" {
  #checkov:skip=CKV_GCP_40:The UIs and the prediction API are used from outside GCP; the external address is reachable only from allowed_source_ranges on the published ports (google_compute_firewall.ingress).
  #checkov:skip=CKV_GCP_34:SSH is by the one key in this VM's metadata (project-wide keys blocked); OS Login would ignore that key and need an IAM binding per user, which this single-VM deployment does not manage.
  #checkov:skip=CKV_GCP_38:Boot disk encrypted at rest with Google-managed keys; customer-supplied keys would have to be handed to every start of the VM, which an unattended single-VM deployment cannot do.
  name         = "${var.name}-vm"
  machine_type = var.machine_type
  zone         = var.zone
  tags         = ["${var.name}-vm"]

  can_ip_forward      = false
  deletion_protection = false

  boot_disk {
    initialize_params {
      image = "debian-cloud/debian-12"
      size  = var.disk_size_gb
      type  = var.disk_type
    }
  }

  network_interface {
    subnetwork = google_compute_subnetwork.churn.id
    access_config {
      nat_ip = google_compute_address.vm.address
    }
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  service_account {
    email  = google_service_account.vm.email
    scopes = ["https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring.write"]
  }

  metadata = {
    ssh-keys               = "${var.ssh_user}:${trimspace(var.ssh_public_key)}"
    block-project-ssh-keys = "true"
    enable-oslogin         = "false"
    serial-port-enable     = "false"
    # Under metadata (not metadata_startup_script, which replaces the VM and its volumes on change): a new
    # repository_ref is applied in place and checked out at the next boot (README: "Upgrade").
    startup-script = templatefile("${path.module}/startup.sh.tftpl", {
      repository_url = var.repository_url
      repository_ref = var.repository_ref
      ssh_user       = var.ssh_user
      public_host    = var.public_hostname
    })
  }
}
