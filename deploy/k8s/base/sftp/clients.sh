#!/bin/sh
# Makes one SFTP account per client from clients.conf, at every start of the
# SFTP server (atmoz/sftp runs /etc/sftp.d/* before sshd), idempotently:
#   - the account <CLIENT> (uid from clients.conf, group dataretailx-clients,
#     no shell), unless it exists;
#   - its drop folder /home/dataretailx/inbox/<CLIENT>, owned by the client,
#     group dataretailx (the pipeline), mode 2770: only the client and the
#     pipeline enter it, and what the client uploads belongs to the
#     pipeline's group;
#   - its authorized key, /home/.authorized_keys/<CLIENT>.
# sshd refuses a chroot whose path is not root-owned and writable by root
# only: /home, /home/dataretailx and its inbox are set so.  The inbox is
# root:dataretailx 0751: the pipeline lists it, a client can enter its own
# folder but list nothing.
# Environment (for tests): DX_SFTP_CLIENTS, the clients.conf to read.
set -eu

conf=${DX_SFTP_CLIENTS:-/etc/sftp/clients.conf}
home=/home/dataretailx
keys=/home/.authorized_keys
pipeline_gid=10001
clients_group=dataretailx-clients
clients_gid=10002

getent group "$clients_group" >/dev/null || groupadd --gid "$clients_gid" "$clients_group"
mkdir -p "$home/inbox" "$home/depot" "$keys"
chown root:root /home "$home" "$keys"
chown root:"$pipeline_gid" "$home/inbox"
chmod 0755 /home "$home" "$keys"
chmod 0751 "$home/inbox"
chown 10001:"$pipeline_gid" "$home/depot"
chmod 0770 "$home/depot"

# Lines: CLIENT UID PUBLIC-KEY (the key is the rest of the line).
grep -v '^[[:space:]]*\(#\|$\)' "$conf" | while read -r client uid key; do
    case "$client" in
        *[!A-Za-z0-9_-]* | -* | dataretailx | root)
            echo "clients.conf: refused client name '$client'" >&2
            exit 2 ;;
    esac
    case "$uid" in
        '' | *[!0-9]*) echo "clients.conf: $client: uid '$uid' is not a number" >&2; exit 2 ;;
    esac
    if ! id "$client" >/dev/null 2>&1; then
        useradd --no-create-home --home-dir "/$client" --uid "$uid" --gid "$clients_group" \
            --shell /usr/sbin/nologin "$client"
    fi
    mkdir -p "$home/inbox/$client"
    chown "$uid:$pipeline_gid" "$home/inbox/$client"
    chmod 2770 "$home/inbox/$client"
    printf '%s\n' "$key" > "$keys/$client.tmp"
    chmod 0644 "$keys/$client.tmp"
    mv "$keys/$client.tmp" "$keys/$client"
    echo "clients.conf: account $client (uid $uid), folder inbox/$client"
done
