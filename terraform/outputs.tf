locals {
  # The name the proxy serves: public_hostname, else the VM's address (a certificate from the proxy's own CA).
  public_host = var.public_hostname != "" ? var.public_hostname : google_compute_address.vm.address
}

output "external_ip" {
  description = "The VM's static external address."
  value       = google_compute_address.vm.address
}

output "ssh" {
  description = "How to log in."
  value       = "ssh ${var.ssh_user}@${google_compute_address.vm.address}"
}

output "urls" {
  description = "Every UI and API the VM publishes through its proxy, over HTTPS (to allowed_source_ranges only)."
  value = {
    console        = "https://${local.public_host}/"
    predict        = "https://${local.public_host}/predict"
    classifier_api = "https://${local.public_host}/classifier/docs/"
    scheduler_api  = "https://${local.public_host}/docs/"
    dbt_docs       = "https://${local.public_host}/dbt/docs/static_index.html"
    grafana        = "https://${local.public_host}/grafana/"
    metabase       = "https://${local.public_host}/metabase/"
  }
}

output "tunnels" {
  description = "What listens on the VM's 127.0.0.1 only, through SSH: then http://127.0.0.1:9001 (MinIO console), :9090 (Prometheus), :5050 (pgAdmin, with the admin profile)."
  value       = "ssh -N -L 9001:127.0.0.1:9001 -L 9090:127.0.0.1:9090 -L 5050:127.0.0.1:5050 ${var.ssh_user}@${google_compute_address.vm.address}"
}

output "logins" {
  description = "Where the generated logins are: scripts/init-env wrote them on first boot to a root-only file."
  value       = "ssh ${var.ssh_user}@${google_compute_address.vm.address} sudo cat /root/churn-logins.txt"
}
