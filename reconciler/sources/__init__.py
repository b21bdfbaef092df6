"""Writers of desired state other than the hub: the watched manifests folder."""
