"""The lab provider: a region built as real systemd-nspawn hosts on this machine.

Modules: `layout` (every name and address, derived from the model), `image` (cached Debian base),
`network` (bridges, the shaped link router), `hosts` (containers), `proxy` (package access),
`s3` (object storage endpoint), `control` (ssh, cut/restore link, stop/start host), `ops`
(the provider operations `hcops infra` calls).
"""
