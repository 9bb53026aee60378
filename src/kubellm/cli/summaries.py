"""What `kubellm --help` lists: each command's name and the first paragraph of its help.

Kept here so that the top-level help imports no component (0.3 s against 1.0 s of CPU for
importing them all, on every `kubellm --help`). tests/unit/cli/test_cli_commands.py checks it
against what the components register: a command's new help fails that test until copied here.
"""

from __future__ import annotations

SUMMARIES = {
    "validate": "Check an LLMService spec; on error print each field path with a fix hint, exit 2.",
    "schema": "Print the JSON Schema of the LLMService spec, or its CRD with --crd.",
    "render": "Render LLMServices into Kubernetes objects (YAML to stdout, or files with -o).",
    "operator": "Run the LLMService operator (kopf) until SIGTERM/SIGINT.",
    "install": "Install the LLMService CRD, the operator's least-privilege RBAC and its Deployment.",
    "apply": "Server-side apply SPEC: its rendered objects (no operator needed), or with --resource\nthe LLMService object itself.",
    "status": "Show an LLMService's phase, conditions, ready replicas per role and URL.",
    "delete": "Delete an LLMService and everything created for it (a retained cache claim stays).",
    "doctor": "Check a live cluster for what an LLMService needs (GPUs, device plugin, CRDs, storage,\nversion, quota) and say what is missing. Exit 3 when something blocks.",
    "pull": "Download a model into DEST: parallel, resumable, verified, committed atomically.",
    "sim": "Serve simulated vLLM engines (OpenAI API + vLLM metrics), no GPU needed.",
    "gateway": "Run the OpenAI-compatible, LLM-aware gateway in front of engines.",
    "check": "Check a deployment works and is fast enough; exit 1 naming what failed.",
    "up": "Run an LLMService on this machine: engines, gateway, autoscaler. No cluster needed.",
    "plan": "Capacity plan by simulation: replicas, accelerators and scaling settings that meet the SLO at least cost on a trace, compared with the field's policies.",
    "bench": "Load-test an OpenAI-compatible endpoint: `kubellm bench URL --model M`.",
}
