"""A small hand-made IHE XDM archive (fake patient, fake document), as MSSanté senders build them."""

from __future__ import annotations

import io
import zipfile

INS_NIR_TEST_OID = "1.2.250.1.213.1.4.10"
LOCAL_PATIENT_OID = "1.2.250.1.999.1.1"

_METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
    xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
  <rim:RegistryObjectList>
    <rim:ExtrinsicObject id="Document01" mimeType="text/xml"
        objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
      <rim:Slot name="sourcePatientId">
        <rim:ValueList><rim:Value>{patient_id}</rim:Value></rim:ValueList>
      </rim:Slot>
      <rim:Name><rim:LocalizedString value="Lettre de liaison à la sortie"/></rim:Name>
      <rim:Classification classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
          classifiedObject="Document01" nodeRepresentation="10" id="cl01">
        <rim:Slot name="codingScheme">
          <rim:ValueList><rim:Value>1.2.250.1.213.1.1.4.1</rim:Value></rim:ValueList>
        </rim:Slot>
      </rim:Classification>
      <rim:Classification classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
          classifiedObject="Document01" nodeRepresentation="{type_code}" id="cl02">
        <rim:Slot name="codingScheme">
          <rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList>
        </rim:Slot>
      </rim:Classification>
      <rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
          value="{patient_id}" id="ei01" registryObject="Document01"/>
    </rim:ExtrinsicObject>
  </rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
"""

_CDA = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <realmCode code="FR"/>
  <code code="{type_code}" codeSystem="2.16.840.1.113883.6.1" displayName="Lettre de liaison"/>
  <title>Lettre de liaison à la sortie</title>
  <recordTarget>
    <patientRole>
      <id root="{patient_oid}" extension="299990000000042"/>
      <patient><name><given>Camille</given><family>EXEMPLE</family></name></patient>
    </patientRole>
  </recordTarget>
</ClinicalDocument>
"""


def make_xdm_zip(*, type_code: str = "11490-0", patient_oid: str = INS_NIR_TEST_OID, metadata: bool = True) -> bytes:
    """IHE_XDM/SUBSET01 with METADATA.XML (optional) and one CDA document; fixed dates, so stable bytes."""
    patient_id = f"299990000000042^^^&amp;{patient_oid}&amp;ISO"
    members = {
        "INDEX.HTM": "<html><body>Documents de test</body></html>",
        "README.TXT": "Archive IHE XDM de test (données fictives).",
        "IHE_XDM/SUBSET01/DOC0001.XML": _CDA.format(type_code=type_code, patient_oid=patient_oid),
    }
    if metadata:
        members["IHE_XDM/SUBSET01/METADATA.XML"] = _METADATA.format(type_code=type_code, patient_id=patient_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=(2025, 3, 3, 10, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()
