#!/usr/bin/env bash
# make check INV=inventories/<province>: the whole controller-side check of an
# inventory, touching no host and needing no Docker. First yamllint (a YAML
# error is named by file and line), then playbooks/preflight.yml with every
# host's connection set to local: it only reads the inventory and runs the
# checks on this machine. Asks for the vault password when a file (or a value) of the
# inventory is vaulted, unless ANSIBLE_VAULT_PASSWORD_FILE says where it is.
set -euo pipefail
cd "$(dirname "$0")/.."

inventory=${1:-}
if [ -z "$inventory" ] || [ ! -e "$inventory" ]; then
  echo "usage: make check INV=inventories/<province> (no inventory at '${inventory}')" >&2
  exit 2
fi

printf '\033[1m==> %s\033[0m\n' "yamllint $inventory"
yamllint -s -c .yamllint "$inventory"

# The example's secrets file, never copied: every secret would be undefined.
missing=0
while IFS= read -r example; do
  if [ ! -e "${example%.example}" ]; then
    echo "${example%.example} · missing · the secrets (passwords, keys) are not there ·" \
         "copy $example to ${example%.example}, replace every value, then ansible-vault encrypt it" >&2
    missing=1
  fi
done < <(find "$inventory" -name 'vault.yml.example' | sort)
[ "$missing" = 0 ] || exit 2

vault=()
if [ -z "${ANSIBLE_VAULT_PASSWORD_FILE:-}" ] && grep -rqsE '^[[:space:]]*\$ANSIBLE_VAULT;' "$inventory"; then
  vault=(--ask-vault-pass)
fi
printf '\033[1m==> %s\033[0m\n' "the inventory's records and settings (playbooks/preflight.yml, local)"
ansible-playbook -i "$inventory" playbooks/preflight.yml -e ansible_connection=local "${vault[@]}"
