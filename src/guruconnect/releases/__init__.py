"""Signed agent releases: the manifest format, keys, and the agent's update decisions.

Nothing here does network I/O: the server (which stores manifests it cannot forge), the
admin CLI (which signs, on the operator's machine) and the agent (which verifies with the
public keys built into it) all use these functions.
"""
