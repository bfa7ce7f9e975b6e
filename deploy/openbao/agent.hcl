# OpenBAO Agent: AppRole auto-auth, then the templates rendered into the tmpfs `secrets` volume.
# The app containers read /run/neanelu-secrets/*.env through NEANELU_ENV_FILE; nothing is on disk.
pid_file = "/tmp/bao-agent.pid"

vault {
  address = "http://openbao:8200"
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = "/etc/openbao/approle/role_id"
      secret_id_file_path                 = "/etc/openbao/approle/secret_id"
      remove_secret_id_file_after_reading = false
    }
  }
}

template_config {
  # KV v2 secrets have no lease: re-read this often, re-render when a version changes.
  static_secret_render_interval = "5m"
  exit_on_retry_failure         = true
}

template {
  source               = "/etc/openbao/templates/neanelu.env.ctmpl"
  destination          = "/run/neanelu-secrets/neanelu.env"
  perms                = "0644"
  error_on_missing_key = true
}

template {
  source               = "/etc/openbao/templates/migrator.env.ctmpl"
  destination          = "/run/neanelu-secrets/migrator.env"
  perms                = "0644"
  error_on_missing_key = true
}

template {
  source               = "/etc/openbao/templates/postgres_password.ctmpl"
  destination          = "/run/neanelu-secrets/postgres_password"
  perms                = "0644"
  error_on_missing_key = true
}

template {
  source               = "/etc/openbao/templates/owner_password.ctmpl"
  destination          = "/run/neanelu-secrets/owner_password"
  perms                = "0644"
  error_on_missing_key = true
}

template {
  source               = "/etc/openbao/templates/app_password.ctmpl"
  destination          = "/run/neanelu-secrets/app_password"
  perms                = "0644"
  error_on_missing_key = true
}
