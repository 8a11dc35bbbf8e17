"""``testbed images pin``: resolve every image tag of ``stack/versions.yaml`` to its registry digest.

The digests go to ``stack/image-digests.json`` (committed where a registry is reachable) so a deployment
can use ``image@sha256:...`` and notice a re-pushed tag. Uses the registries' v2 API with the anonymous
bearer-token flow that Docker Hub, GHCR, Quay and docker.elastic.co all offer for public images.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import httpx

from testbed import settings
from testbed.deploy.envfile import DIGESTS_FILE

DOCKER_HUB = "registry-1.docker.io"
# A tag of a multi-arch image resolves to its index; accept the single-platform forms too.
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnreachable(RuntimeError):
    pass


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        name, _, tag = reference.rpartition(":")
        if not name or "/" in tag:
            raise ValueError(f"{reference!r}: expected registry/repository:tag")
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name if "/" in name else f"library/{name}"
        return cls(registry=registry, repository=repository, tag=tag)


def _bearer_token(client: httpx.Client, challenge: str, repository: str) -> str:
    params = dict(_CHALLENGE_PARAM.findall(challenge))
    realm = params.pop("realm", None)
    if realm is None:
        raise RuntimeError(f"unexpected registry challenge {challenge!r}")
    params.setdefault("scope", f"repository:{repository}:pull")
    response = client.get(realm, params=params)
    response.raise_for_status()
    body = response.json()
    return str(body.get("token") or body.get("access_token"))


def resolve_digest(client: httpx.Client, reference: str) -> str:
    ref = ImageRef.parse(reference)
    url = f"https://{ref.registry}/v2/{ref.repository}/manifests/{ref.tag}"
    headers = {"Accept": MANIFEST_TYPES}
    response = client.head(url, headers=headers)
    if response.status_code == 401:
        token = _bearer_token(client, response.headers.get("www-authenticate", ""), ref.repository)
        response = client.head(url, headers={**headers, "Authorization": f"Bearer {token}"})
    response.raise_for_status()
    digest = response.headers.get("docker-content-digest")
    if not digest:
        raise RuntimeError(f"{reference}: the registry sent no Docker-Content-Digest")
    return digest


def pin_images(path: Path = DIGESTS_FILE, timeout_s: float = 15.0) -> dict[str, str]:
    """Resolve every declared image; write ``{name: "image:tag@sha256:..."}`` only if all resolved."""
    images: dict[str, str] = settings.versions()["images"]
    pinned: dict[str, str] = {}
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        for name, reference in images.items():
            try:
                pinned[name] = f"{reference}@{resolve_digest(client, reference)}"
            except httpx.TransportError as exc:
                registry = ImageRef.parse(reference).registry
                raise RegistryUnreachable(
                    f"registry {registry} unreachable ({type(exc).__name__}): digests not pinned; "
                    "run `testbed images pin` where the registries are reachable"
                ) from exc
    path.write_text(json.dumps(pinned, indent=2, sort_keys=True) + "\n")
    return pinned
