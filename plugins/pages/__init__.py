"""Pages: simple content pages (about, FAQ, venue info) on a tenant's site."""
