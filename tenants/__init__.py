"""The tenant control plane: provisioning, domains, plugins, suspension and deletion."""
