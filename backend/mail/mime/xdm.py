"""Best-effort reading of an ``IHE_XDM.zip`` for the ``X-MSS-CODECDA`` and ``X-MSS-INS`` headers.

Référentiel socle MSSanté #2 (ECO.2.4.1/2): a message carrying CDA documents in an IHE_XDM archive
must say the documents' type (the CDA header ``code``, a LOINC code such as ``11490-0``) and
whether they carry the patient's INS. When the caller does not give them we look, in order:

1. ``IHE_XDM/<subset>/METADATA.XML`` (XDS metadata): each DocumentEntry's ``typeCode``
   classification (the CDA ``code``; ``classCode`` if there is no typeCode) and its ``patientId``;
2. the CDA documents of the subsets: ``ClinicalDocument/code/@code`` and
   ``recordTarget/patientRole/id/@root``.

The INS is there when a patient identifier is issued under an INS OID (INS-NIR, INS-NIA and their
test twins). The archive comes from the user: member count and sizes are bounded, XML with a
DOCTYPE (entity expansion) is refused.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

#: XDS DocumentEntry classification schemes and identification scheme (IHE ITI TF-3 4.2.5).
TYPE_CODE_SCHEME = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
CLASS_CODE_SCHEME = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
PATIENT_ID_SCHEME = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
#: INS-NIR, INS-NIA, and the test INS-NIR / INS-NIA (ANS OID registry; M confidence for the last two).
INS_OIDS = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"})

_MAX_MEMBERS = 1000
_MAX_XML = 10 * 1024 * 1024
_METADATA = re.compile(r"(?i)^IHE_XDM/[^/]+/METADATA\.XML$")
_SUBSET_XML = re.compile(r"(?i)^IHE_XDM/[^/]+/[^/]+\.XML$")
_DOCTYPE = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class XdmInfo:
    #: Document type codes, each once, in archive order.
    codes: list[str] = field(default_factory=list)
    #: True if a document names the patient by INS, False if documents were read and none does,
    #: None if nothing could be read.
    ins: bool | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _has_ins(value: str) -> bool:
    return any(part in INS_OIDS for part in re.split(r"[&^\s]", value))


def _from_metadata(root: ET.Element) -> tuple[list[str], list[bool]]:
    codes: list[str] = []
    ins: list[bool] = []
    for entry in root.iter():
        if _local(entry.tag) != "ExtrinsicObject":
            continue
        type_codes, class_codes, patient_ids = [], [], []
        for node in entry.iter():
            name = _local(node.tag)
            if name == "Classification":
                scheme, code = node.get("classificationScheme"), node.get("nodeRepresentation")
                if code and scheme == TYPE_CODE_SCHEME:
                    type_codes.append(code)
                elif code and scheme == CLASS_CODE_SCHEME:
                    class_codes.append(code)
            elif name == "ExternalIdentifier" and node.get("identificationScheme") == PATIENT_ID_SCHEME:
                patient_ids.append(node.get("value") or "")
            elif name == "Slot" and node.get("name") == "sourcePatientId":
                patient_ids.extend(v.text or "" for v in node.iter() if _local(v.tag) == "Value")
        codes.extend(type_codes or class_codes)
        ins.append(any(_has_ins(value) for value in patient_ids))
    return codes, ins


def _from_cda(root: ET.Element) -> tuple[list[str], list[bool]]:
    if _local(root.tag) != "ClinicalDocument":
        return [], []
    code = next((c.get("code") for c in root if _local(c.tag) == "code"), None)
    roots = [
        node.get("root") or ""
        for target in root
        if _local(target.tag) == "recordTarget"
        for node in target.iter()
        if _local(node.tag) == "id"
    ]
    return ([code] if code else []), [any(r in INS_OIDS for r in roots)]


def _xml(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> ET.Element | None:
    if info.file_size > _MAX_XML:
        return None
    with archive.open(info) as member:
        data = member.read(_MAX_XML + 1)
    if len(data) > _MAX_XML or _DOCTYPE.search(data):
        return None
    try:
        return ET.fromstring(data)  # noqa: S314 (no DOCTYPE, so no entities to expand)
    except (ET.ParseError, ValueError):
        return None


def read_xdm(data: bytes) -> XdmInfo:
    """What an IHE_XDM archive says of its documents; an empty ``XdmInfo`` when it says nothing."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()[:_MAX_MEMBERS]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return XdmInfo()
    codes: list[str] = []
    ins: list[bool] = []
    try:
        with archive:
            for info in members:
                if _METADATA.match(info.filename):
                    root = _xml(archive, info)
                    if root is not None:
                        found_codes, found_ins = _from_metadata(root)
                        codes += found_codes
                        ins += found_ins
            if not codes:
                for info in members:
                    if _SUBSET_XML.match(info.filename) and not _METADATA.match(info.filename):
                        root = _xml(archive, info)
                        if root is not None:
                            found_codes, found_ins = _from_cda(root)
                            codes += found_codes
                            ins += found_ins
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, NotImplementedError, RuntimeError):
        pass  # a damaged or encrypted member: keep what was read
    return XdmInfo(codes=list(dict.fromkeys(codes)), ins=any(ins) if ins else None)
