"""congvu_mail: the regulation's rules and the host services of congvu-mail.

The rules (addresses, passwords, accounts, the directory, forwarding, the
inventory's placeholders, the compliance report) are plain functions: the
filter plugins in filter_plugins/ hand them to Ansible, and the services
call them directly. The services (congvu_mail.services) are what the hosts
run, each a console script (pyproject.toml). docs/development.md, "The Python
package", describes the layout.
"""
