# OpenBAO server: integrated (raft) storage on the openbao-data volume (an encrypted LUKS volume on
# the host), listener on internal_net only. Shamir seal: `bao operator init -key-shares=5
# -key-threshold=3`; deploy/openbao/bao-unseal.sh applies three keys after a restart.
ui            = false
disable_mlock = false
api_addr      = "http://openbao:8200"
cluster_addr  = "http://openbao:8201"

storage "raft" {
  path    = "/openbao/data"
  node_id = "neanelu-bao-1"
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = true # internal_net only, never published; Traefik does not route here
}

telemetry {
  prometheus_retention_time = "24h"
  disable_hostname          = true
}
