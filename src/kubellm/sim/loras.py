"""The LoRA adapters one engine serves (pure): load, unload, and which one a request names."""

from __future__ import annotations

from typing import Any

from kubellm.sim.errors import ModelNotFoundError, RequestError


class LoraSet:
    """Adapters by name, with the base model's name for resolving requests."""

    def __init__(self, base: str, preloaded: tuple[str, ...] = ()) -> None:
        self.base = base
        self._paths: dict[str, str] = {name: name for name in preloaded}

    def load(self, name: Any, path: Any) -> str:
        if not isinstance(name, str) or not name or not isinstance(path, str) or not path:
            raise RequestError("Both 'lora_name' and 'lora_path' must be provided.", param="lora_name")
        if name in self._paths or name == self.base:
            raise RequestError(f"The lora adapter '{name}' has already been loaded.", param="lora_name")
        self._paths[name] = path
        return f"Success: LoRA adapter '{name}' added successfully."

    def unload(self, name: Any) -> str:
        if not isinstance(name, str) or name not in self._paths:
            raise RequestError(f"The lora adapter '{name}' cannot be found.", status=404,
                               err_type="NotFoundError", param="lora_name")
        del self._paths[name]
        return f"Success: LoRA adapter '{name}' removed successfully."

    def resolve(self, model: Any) -> str | None:
        """The adapter a request's ``model`` names (None: the base model); 404 when unknown."""
        if model is None or model == "" or model == self.base:
            return None
        if isinstance(model, str) and model in self._paths:
            return model
        raise ModelNotFoundError(str(model))

    def model_cards(self, created: int, max_model_len: int) -> list[dict[str, Any]]:
        """``/v1/models`` entries: the base model, then each adapter with the base as parent."""
        cards = [_card(self.base, self.base, None, created, max_model_len)]
        cards += [_card(name, path, self.base, created, max_model_len) for name, path in self._paths.items()]
        return cards


def _card(name: str, root: str, parent: str | None, created: int, max_len: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": root,
            "parent": parent, "max_model_len": max_len,
            "permission": [{"id": f"modelperm-{name}", "object": "model_permission", "created": created,
                            "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
                            "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False,
                            "organization": "*", "group": None, "is_blocking": False}]}
