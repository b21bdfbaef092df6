"""The version of the resource format (the `apiVersion` of every manifest)."""

from __future__ import annotations

API_VERSION = "jupyterhub-ds/v1"
