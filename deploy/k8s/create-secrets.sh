#!/bin/sh
# Create (or update) the Kubernetes secrets of the DataRetailX pipeline from
# files given on the command line.  Nothing secret is ever committed: the
# manifests under deploy/k8s only refer to these secrets by name.
#
# Usage:
#   deploy/k8s/create-secrets.sh --target openfaas|standalone \
#       --sftp-host-key FILE --sftp-user-key FILE [--nats-creds FILE] \
#       [--nats-tls-ca FILE] [--nats-tls-cert FILE --nats-tls-key FILE] \
#       [--sftp-host NAME]... [--dry-run]
#
#   --sftp-host-key FILE  private ed25519 host key of the SFTP server
#                         (ssh-keygen -t ed25519 -N '' -f sftp_host_ed25519_key)
#   --sftp-user-key FILE  private key the workers log in with (its public
#                         half is derived with ssh-keygen -y and installed on
#                         the SFTP server as the account's authorized key)
#   --nats-creds FILE     NATS credentials file, for a NATS server that
#                         requires them; without it the secret nats-creds is
#                         created empty (the in-cluster NATS of the base has
#                         no client authentication: the nats-connector cannot
#                         present credentials; NetworkPolicies keep it private)
#   --nats-tls-ca FILE    PEM CA certificates that sign the NATS server's
#                         certificate (a private CA; NATS_TLS_CA_FILE)
#   --nats-tls-cert FILE  PEM client certificate and its private key, for a
#   --nats-tls-key FILE   NATS server that requires mutual TLS
#                         (NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE); each of
#                         the three secrets is created empty when not given
#   --sftp-host NAME      a name the workers use for the SFTP server, for
#                         known_hosts (default: the Service's names)
#   --dry-run             print the Secret manifests instead of applying them
#
# Secrets made (each file's key is the secret's name, as OpenFaaS mounts it
# at /var/openfaas/secrets/<name>):
#   namespace dataretailx:          sftp-host-keys (ssh_host_ed25519_key),
#                                   sftp-authorized-keys (dataretailx.pub)
#   worker namespace (openfaas-fn for --target openfaas, dataretailx for
#   --target standalone):           sftp-key, sftp-known-hosts, nats-creds,
#                                   nats-tls-ca, nats-tls-cert, nats-tls-key
set -eu

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed -e '/^set -eu/d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

fn_label= target= host_key= user_key= nats_creds= dry_run=0 hosts=
nats_tls_ca= nats_tls_cert= nats_tls_key=
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=${2-}; shift 2 ;;
        --sftp-host-key) host_key=${2-}; shift 2 ;;
        --sftp-user-key) user_key=${2-}; shift 2 ;;
        --nats-creds) nats_creds=${2-}; shift 2 ;;
        --nats-tls-ca) nats_tls_ca=${2-}; shift 2 ;;
        --nats-tls-cert) nats_tls_cert=${2-}; shift 2 ;;
        --nats-tls-key) nats_tls_key=${2-}; shift 2 ;;
        --sftp-host) hosts="${hosts:+$hosts,}${2-}"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage ;;
        *) echo "create-secrets: unknown argument: $1" >&2; usage ;;
    esac
done

case "$target" in
    openfaas) fn_ns=openfaas-fn ;;
    standalone) fn_ns=dataretailx ;;
    *) echo "create-secrets: --target must be openfaas or standalone" >&2; exit 2 ;;
esac
if { [ -n "$nats_tls_cert" ] && [ -z "$nats_tls_key" ]; } || { [ -z "$nats_tls_cert" ] && [ -n "$nats_tls_key" ]; }; then
    echo "create-secrets: --nats-tls-cert and --nats-tls-key go together" >&2
    exit 2
fi
for f in "$host_key" "$user_key" ${nats_creds:+"$nats_creds"} ${nats_tls_ca:+"$nats_tls_ca"} \
         ${nats_tls_cert:+"$nats_tls_cert"} ${nats_tls_key:+"$nats_tls_key"}; do
    if [ -z "$f" ] || [ ! -r "$f" ]; then
        echo "create-secrets: missing or unreadable file: '${f}' (see --help)" >&2
        exit 2
    fi
done
hosts=${hosts:-sftp.dataretailx.svc.cluster.local,sftp.dataretailx,sftp}

command -v kubectl >/dev/null || { echo "create-secrets: kubectl not found" >&2; exit 2; }
command -v ssh-keygen >/dev/null || { echo "create-secrets: ssh-keygen not found (openssh-client)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

# Public halves, derived here so that they always match the private keys.
if ! ssh-keygen -y -f "$host_key" > "$work/host.pub" 2>/dev/null; then
    echo "create-secrets: $host_key is not a readable private key without passphrase" >&2
    exit 2
fi
if ! ssh-keygen -y -f "$user_key" > "$work/dataretailx.pub" 2>/dev/null; then
    echo "create-secrets: $user_key is not a readable private key without passphrase" >&2
    exit 2
fi
# known_hosts: "name1,name2 <type> <key>" (port 22: no [host]:port form).
printf '%s %s\n' "$hosts" "$(cut -d' ' -f1,2 "$work/host.pub")" > "$work/known_hosts"
# Optional files: the secret holds the file, or nothing.
optional_file() {
    if [ -n "$1" ]; then cp "$1" "$work/$2"; else : > "$work/$2"; fi
}
optional_file "$nats_creds" nats-creds
optional_file "$nats_tls_ca" nats-tls-ca
optional_file "$nats_tls_cert" nats-tls-cert
optional_file "$nats_tls_key" nats-tls-key

# One secret: name, namespace, then key=file pairs.
secret() {
    name=$1 ns=$2
    shift 2
    args=
    for kv in "$@"; do
        args="$args --from-file=$kv"
    done
    # The label lets `faas-cli secret list` show the function secrets.
    # shellcheck disable=SC2086
    kubectl create secret generic "$name" --namespace "$ns" $args \
            --dry-run=client -o yaml \
        | kubectl label --local -f - app.kubernetes.io/part-of=dataretailx \
            ${fn_label:+"$fn_label"} -o yaml > "$work/secret.yaml"
    if [ "$dry_run" = 1 ]; then
        echo "---"
        cat "$work/secret.yaml"
    else
        kubectl apply -f "$work/secret.yaml"
    fi
}

namespace() {
    if [ "$dry_run" = 0 ]; then
        kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f -
    fi
}

namespace dataretailx
[ "$fn_ns" = dataretailx ] || namespace "$fn_ns"

secret sftp-host-keys dataretailx "ssh_host_ed25519_key=$host_key"
secret sftp-authorized-keys dataretailx "dataretailx.pub=$work/dataretailx.pub"
[ "$target" = openfaas ] && fn_label=app.kubernetes.io/managed-by=openfaas
secret sftp-key "$fn_ns" "sftp-key=$user_key"
secret sftp-known-hosts "$fn_ns" "sftp-known-hosts=$work/known_hosts"
secret nats-creds "$fn_ns" "nats-creds=$work/nats-creds"
for name in nats-tls-ca nats-tls-cert nats-tls-key; do
    secret "$name" "$fn_ns" "$name=$work/$name"
done
