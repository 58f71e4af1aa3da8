# Inputs. Three have no default on purpose: the project, who may connect (allowed_source_ranges) and the
# SSH key; nothing here opens the VM to the whole internet.

variable "project_id" {
  description = "The GCP project to create the VM in."
  type        = string
}

variable "region" {
  description = "Region of the subnetwork and the static address."
  type        = string
  default     = "europe-west1"
}

variable "zone" {
  description = "Zone of the VM (inside region)."
  type        = string
  default     = "europe-west1-b"
}

variable "name" {
  description = "Prefix of every resource's name."
  type        = string
  default     = "churn"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}$", var.name))
    error_message = "name must be 1-21 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "machine_type" {
  description = "VM size. The whole stack (PostgreSQL, MinIO, three services, Prometheus, Grafana, Metabase's JVM) wants 4 vCPUs and 16 GB."
  type        = string
  default     = "e2-standard-4"
}

variable "disk_size_gb" {
  description = "Boot disk size in GB: images, the PostgreSQL and MinIO volumes, Prometheus' samples."
  type        = number
  default     = 100

  validation {
    condition     = var.disk_size_gb >= 30
    error_message = "disk_size_gb must be at least 30 (the images alone take about 5 GB)."
  }
}

variable "disk_type" {
  description = "Boot disk type."
  type        = string
  default     = "pd-balanced"
}

variable "allowed_source_ranges" {
  description = "CIDR ranges allowed to reach SSH and the published ports (e.g. your office's or VPN's egress, [\"203.0.113.0/24\"]). Required; the whole internet (0.0.0.0/0, ::/0) is refused."
  type        = list(string)

  validation {
    condition     = length(var.allowed_source_ranges) > 0
    error_message = "allowed_source_ranges must name at least one CIDR range."
  }

  validation {
    condition     = alltrue([for r in var.allowed_source_ranges : can(cidrhost(r, 0))])
    error_message = "every entry of allowed_source_ranges must be a CIDR range such as 203.0.113.0/24."
  }

  validation {
    condition     = alltrue([for r in var.allowed_source_ranges : !contains(["0.0.0.0/0", "::/0"], r) && !endswith(r, "/0")])
    error_message = "allowed_source_ranges must not contain a /0 range: that would open the VM to the whole internet."
  }

  # A range wider than a /8 (IPv4) or a /32 (IPv6) is a large share of the internet, not somebody's network.
  validation {
    condition = alltrue([for r in var.allowed_source_ranges :
      can(cidrhost(r, 0)) ? tonumber(split("/", r)[1]) >= (strcontains(r, ":") ? 32 : 8) : true
    ])
    error_message = "every entry of allowed_source_ranges must be a /8 or narrower (IPv6: /32 or narrower), e.g. 203.0.113.0/24."
  }
}

variable "ssh_user" {
  description = "The login that ssh_public_key is installed for."
  type        = string
  default     = "churn"
}

variable "ssh_public_key" {
  description = "The OpenSSH public key (one line, e.g. the contents of ~/.ssh/id_ed25519.pub) allowed to log in as ssh_user. Password logins are off."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+", var.ssh_public_key))
    error_message = "ssh_public_key must be one OpenSSH public key line (ssh-ed25519 …, ecdsa-sha2-… or ssh-rsa …)."
  }
}

variable "repository_url" {
  description = "The git repository of this project that the VM checks out (an https URL it can reach)."
  type        = string

  validation {
    condition     = can(regex("^https://", var.repository_url))
    error_message = "repository_url must be an https:// URL."
  }
}

variable "repository_ref" {
  description = "The commit the VM checks out, as its full 40-digit hash (a branch or a tag can move under you)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{40}$", var.repository_ref))
    error_message = "repository_ref must be a full commit hash (40 lower-case hex digits, e.g. from git rev-parse HEAD): a branch or a tag can move."
  }
}

variable "subnet_cidr" {
  description = "The VM's subnetwork."
  type        = string
  default     = "10.42.0.0/24"
}

variable "public_hostname" {
  description = "The DNS name people reach the platform at (its A record pointing at the VM's address): the proxy gets a Let's Encrypt certificate for it. Empty: the VM's external IP address, served with a certificate from the proxy's own CA."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$", var.public_hostname)) || var.public_hostname == ""
    error_message = "public_hostname must be a DNS name (lower-case letters, digits, hyphens and dots) or empty."
  }
}
