"""Golden block hashes from vLLM 0.34.0's own code (wheel vllm-0.34.0-cp38-abi3-manylinux_2_28_x86_64.whl).

vllm/utils/hashing.py imports cleanly (cbor2, xxhash) and is imported as is.
kv_cache_utils.py imports torch and the whole engine, so the functions the block hasher
needs are cut out of its source with ast (verbatim) and exec'd with hashing's functions.
"""
import ast, importlib.util, json, os, sys, types
from dataclasses import dataclass, field

spec = importlib.util.spec_from_file_location("vhashing", "vllm/utils/hashing.py")
assert spec is not None and spec.loader is not None
vh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vh)

src = open("vllm/v1/core/kv_cache_utils.py").read()
tree = ast.parse(src)
WANT = {"resolve_none_hash_seed", "init_none_hash", "hash_block_tokens", "generate_block_hash_extra_keys",
        "_gen_mm_extra_hash_keys", "_gen_lora_extra_hash_keys", "_gen_prompt_embeds_extra_hash_keys",
        "get_request_block_hasher", "maybe_convert_block_hash", "to_event_extra_keys"}
ASSIGN = {"DEFAULT_NONE_HASH_SEED", "_NON_CRYPTO_HASH_FUNCTIONS", "_NONE_HASH_SEED", "BlockHash"}
body: list[ast.stmt] = []
for node in tree.body:
    if isinstance(node, ast.FunctionDef) and node.name in WANT:
        body.append(node)
    elif isinstance(node, (ast.Assign, ast.AnnAssign)):
        names = [t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]
        if set(names) & ASSIGN:
            body.append(node)
code = compile(ast.Module(body=body, type_ignores=[]), "kv_cache_utils.py", "exec")
import logging
from typing import Any, NewType
from collections.abc import Callable, Sequence, Iterable
class _Envs: VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES = True
from array import array
ns = dict(array=array, os=os, Any=Any, NewType=NewType, Callable=Callable, Sequence=Sequence, Iterable=Iterable,
          xxhash=vh.xxhash, xxhash_cbor=vh.xxhash_cbor, logger=logging.getLogger("v"), envs=_Envs,
          Request=object, ExternalBlockHash=bytes | int, hashlib=__import__("hashlib"), __name__="kvu")
ns["get_mm_features_in_window"] = None  # only reached for multimodal requests past block 0 (not used here)
exec(code, ns)
tb = ast.parse(open("vllm/v1/token_buffer.py").read())
exec(compile(ast.Module(body=[n for n in tb.body if isinstance(n, ast.FunctionDef) and n.name == "token_slice"], type_ignores=[]), "token_buffer.py", "exec"), ns)

@dataclass
class Pos: offset: int; length: int
@dataclass
class MM: identifier: str; mm_position: Pos
@dataclass
class Lora: lora_name: str; lora_path: str
@dataclass
class Req:
    all_token_ids: list[int]
    lora_request: Any = None
    cache_salt: Any = None
    mm_features: list[MM] = field(default_factory=list)
    prompt_embeds: Any = None
    block_hashes: list[bytes] = field(default_factory=list)
    @property
    def num_tokens(self) -> int: return len(self.all_token_ids)
    @property
    def _all_token_ids(self) -> list[int]: return self.all_token_ids

def run(algo: str, seed: str | None, req: Req, bs: int) -> dict[str, Any]:
    fn = vh.get_hash_fn_by_name(algo)
    if seed is None: os.environ.pop("PYTHONHASHSEED", None)
    else: os.environ["PYTHONHASHSEED"] = seed
    ns["init_none_hash"](fn)
    hasher = ns["get_request_block_hasher"](bs, fn)
    hs = hasher(req)
    return {"none_hash": ns["NONE_HASH"].hex(), "block_hashes": [h.hex() for h in hs],
            "event_hashes": [ns["maybe_convert_block_hash"](h) for h in hs]}

cases = []
toks_a = list(range(1, 41))  # 2 full blocks + 8 tokens at block size 16
toks_b = [128000, 9906, 11, 1917, 0, 1, 2**31 - 1, 2**31 - 2, 65535, 256] * 7
for algo in ("sha256", "sha256_cbor", "xxhash", "xxhash_cbor"):
    for seed in (None, "0", "1234") if algo.startswith("sha") else ("0", "1234"):
        for name, req, bs in [
            ("plain", Req(toks_a), 16),
            ("plain_bs4", Req(toks_b), 4),
            ("lora", Req(toks_b, lora_request=Lora("sql-adapter", "/models/loras/sql-adapter")), 16),
            ("salt", Req(toks_b, cache_salt="tenant-a"), 16),
            ("lora_salt", Req(toks_b, lora_request=Lora("a", "/p/a"), cache_salt="s"), 16),
            ("mm", Req(toks_b, mm_features=[MM("imghash1", Pos(5, 20)), MM("imghash2", Pos(40, 3))]), 16),
        ]:
            out = run(algo, seed, req, bs)
            lr = req.lora_request
            cases.append({"algo": algo, "seed": seed, "case": name, "block_size": bs, "token_ids": req.all_token_ids,
                          "lora_name": lr.lora_name if lr else None, "lora_path": lr.lora_path if lr else None,
                          "cache_salt": req.cache_salt,
                          "mm": [[m.identifier, m.mm_position.offset, m.mm_position.length] for m in req.mm_features],
                          **out})
json.dump({"vllm_version": "0.34.0", "python": sys.version.split()[0],
           "made_by": "vLLM 0.34.0 wheel: vllm/utils/hashing.py imported; init_none_hash, get_request_block_hasher, "
                      "generate_block_hash_extra_keys, hash_block_tokens, maybe_convert_block_hash cut verbatim "
                      "from vllm/v1/core/kv_cache_utils.py with ast and run",
           "cases": cases}, sys.stdout, indent=1)
