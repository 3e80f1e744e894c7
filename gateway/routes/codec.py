"""The codec server: Temporal's remote-codec protocol over the workers' payload codec.

With `PAYLOAD_ENCRYPTION_KEY` set, Temporal stores ciphertext (`codec.py`). The Web UI
(`temporal server start-dev --ui-codec-endpoint <gateway>/codec`, as `make dev` starts it) and
the `temporal` CLI (`--codec-endpoint <gateway>/codec --codec-auth "Bearer <token>"`) send the
payloads they hold here and show what comes back:

    POST /codec/decode   {"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}
    POST /codec/encode   the same shape, the other way

Bodies are `temporal.api.common.v1.Payloads` in protobuf's JSON form (bytes as base64), and the
answer holds as many payloads, in order. A payload that is not encrypted decodes to itself;
with encryption off both routes answer the payloads as they came. Every call is checked by
`require_codec_access`, and CORS answers the Web UI's origin only (`gateway.app`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from gateway.deps import require_codec_access
from gateway.errors import InvalidRequest
from kernel.codec import PayloadDecryptionError

router = APIRouter(prefix="/codec", tags=["codec"], dependencies=[Depends(require_codec_access)])


class CodecPayload(BaseModel):
    """One `Payload` in protobuf JSON form: metadata values and data are base64."""

    model_config = ConfigDict(extra="allow")

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class CodecPayloads(BaseModel):
    """The body of both routes, and their answer."""

    payloads: list[CodecPayload]


async def get_payload_codec(request: Request) -> PayloadCodec | None:
    codec: PayloadCodec | None = request.app.state.payload_codec
    return codec


PayloadCodecDep = Annotated[PayloadCodec | None, Depends(get_payload_codec)]


def _parse(body: CodecPayloads) -> list[Payload]:
    payloads = []
    for index, item in enumerate(body.payloads):
        try:
            payloads.append(json_format.ParseDict(item.model_dump(), Payload()))
        except json_format.ParseError as exc:
            raise InvalidRequest(f"payloads[{index}]: {exc}") from None
    return payloads


def _answer(payloads: list[Payload]) -> CodecPayloads:
    return CodecPayloads.model_validate(
        {"payloads": [json_format.MessageToDict(payload) for payload in payloads]}
    )


@router.post("/encode", response_model=CodecPayloads)
async def encode(body: CodecPayloads, codec: PayloadCodecDep) -> Any:
    """Encode (encrypt) payloads, as a worker would before writing them."""
    payloads = _parse(body)
    return _answer(await codec.encode(payloads) if codec is not None else payloads)


@router.post("/decode", response_model=CodecPayloads)
async def decode(body: CodecPayloads, codec: PayloadCodecDep) -> Any:
    """Decode (decrypt) payloads for display; unencrypted ones come back as they are."""
    payloads = _parse(body)
    if codec is None:
        return _answer(payloads)
    decoded = []
    for index, payload in enumerate(payloads):
        try:
            decoded.extend(await codec.decode([payload]))
        except PayloadDecryptionError as exc:
            raise InvalidRequest(f"payloads[{index}]: {exc}") from None
    return _answer(decoded)
