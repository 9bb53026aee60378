"""hf://org/repo[@revision]: metadata through `huggingface_hub`, bytes by Range from /resolve/.

The revision is resolved to its commit sha first and every byte is read at that commit, so a
branch moving during the pull cannot mix two versions. LFS files carry a sha256 that is checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from kubellm.pull.drivers.httpio import make_client, stream_range
from kubellm.pull.errors import CredentialsError, NotFoundError, PullError, SourceError, TransferError
from kubellm.pull.options import SourceSettings, TransferOptions
from kubellm.pull.source import Listing, RemoteFile

TOKEN_HINT = (
    "give a Hugging Face token with read access: export HF_TOKEN=hf_... locally, or in the cluster "
    "`kubectl create secret generic hf-token --from-literal=HF_TOKEN=hf_...` and set "
    "spec.model.credentials.name: hf-token"
)


class HfDriver:
    def __init__(self, repo: str, revision: str | None, settings: SourceSettings, options: TransferOptions) -> None:
        self._repo, self._revision = repo, revision or "main"
        self._endpoint = settings.hf_endpoint.rstrip("/")
        self._token = settings.hf_token
        self._chunk = options.chunk_size
        self._client = make_client(options, settings.ca_bundle)

    def list_files(self) -> Listing:
        api = HfApi(endpoint=self._endpoint, token=self._token or False)
        try:
            info = api.model_info(self._repo, revision=self._revision, files_metadata=True)
        except Exception as exc:  # noqa: BLE001 - mapped to the pull tree right here, nothing else escapes
            raise self._map(exc) from exc
        commit = info.sha or self._revision
        files = tuple(self._describe(s, commit) for s in info.siblings or ())
        return Listing(files, revision=commit)

    def _describe(self, sibling: object, commit: str) -> RemoteFile:
        name: str = getattr(sibling, "rfilename")
        lfs = getattr(sibling, "lfs", None)
        size = getattr(sibling, "size", None)
        if size is None:
            raise SourceError(f"hf://{self._repo}: the Hub gave no size for {name}")
        url = f"{self._endpoint}/{self._repo}/resolve/{commit}/{quote(name)}"
        return RemoteFile(name, int(size), lfs.sha256 if lfs else None, getattr(sibling, "blob_id", None), url)

    def _map(self, exc: Exception) -> PullError:
        where = f"hf://{self._repo}"
        if isinstance(exc, GatedRepoError):
            return CredentialsError(
                f"{where} is gated: accept its conditions on the model page with your account"
                + (", and check that the token has access" if self._token else ", then give a token"),
                TOKEN_HINT,
            )
        if isinstance(exc, RevisionNotFoundError):
            return NotFoundError(f"{where} has no revision {self._revision!r}", "check the branch, tag or commit after @")
        if isinstance(exc, RepositoryNotFoundError):
            hint = "check the repository id" + ("" if self._token else f"; if it is private, {TOKEN_HINT}")
            return (NotFoundError if self._token else CredentialsError)(f"{where} was not found or is private", hint)
        if isinstance(exc, HfHubHTTPError):
            return TransferError(f"{where}: {exc}")
        return TransferError(f"{where}: {exc.__class__.__name__}: {exc}")

    def read_range(self, file: RemoteFile, start: int, end: int) -> Iterator[bytes]:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        return stream_range(self._client, file.locator, start, end, file.path, self._chunk, headers)

    def close(self) -> None:
        self._client.close()
