"""Sealing personal fields under per-subject data keys, finding them by blind index, showing them masked.

1. A subject's data key is a Fernet key (AES-128-CBC + HMAC-SHA256: authenticated), stored only wrapped by
   the field keys (trustguard.crypto). Rotating the field keys re-wraps data keys (rotate_field_keys); the
   sealed values themselves never need re-encrypting.
2. A sealed value is stored in JSON as {"$sealed": "<subject id>:<Fernet token>"}: the whole customer contact
   of an escalation, or one payload field the tenant's privacy settings mark as personal.
3. Search uses a blind index: HMAC-SHA256 under TRUSTGUARD_BLIND_INDEX_KEY of the normalised email (lower
   case) or phone (E.164, libphonenumber), so "find the case of +234 803 123 4567" never decrypts anything.
4. Reading gives either the value or FieldUnreadable naming the field and why (erased, key missing, altered):
   pages show that instead of a 500.

One module per sub-domain (blind_index, keys, case, masking, requester); every name is re-exported here, so
`from privacy.vault import X` keeps working.
"""

from .blind_index import blind_index, identifier_digests, looks_like_identifier, normalise_email, normalise_phone
from .case import Sealed, open_contact, open_note, seal_case, seal_note, settings_for
from .keys import (
    CONTACT_FIELDS,
    ERASED,
    SEALED,
    TAMPERED,
    UNKNOWN_SUBJECT,
    FieldUnreadable,
    Subjects,
    is_sealed,
    record_link,
    records_matching,
    seal,
    subject_erase_key,
    subject_for,
    subject_id_of,
    subjects_find,
    unseal,
)
from .masking import FieldView, contact_views, mask, payload_for_display, sealed_payload_fields
from .requester import (
    BLIND_MARK,
    SEALED_REQUESTER,
    blind_mark,
    prime,
    requested_by_of,
    requester_open,
    requester_seal,
    same_person_email,
    subjects_of,
)

__all__ = [
    "BLIND_MARK",
    "CONTACT_FIELDS",
    "ERASED",
    "SEALED",
    "SEALED_REQUESTER",
    "TAMPERED",
    "UNKNOWN_SUBJECT",
    "FieldUnreadable",
    "FieldView",
    "Sealed",
    "Subjects",
    "blind_index",
    "blind_mark",
    "contact_views",
    "identifier_digests",
    "is_sealed",
    "looks_like_identifier",
    "mask",
    "normalise_email",
    "normalise_phone",
    "open_contact",
    "open_note",
    "payload_for_display",
    "prime",
    "record_link",
    "records_matching",
    "requested_by_of",
    "requester_open",
    "requester_seal",
    "same_person_email",
    "seal",
    "seal_case",
    "seal_note",
    "sealed_payload_fields",
    "settings_for",
    "subject_erase_key",
    "subject_for",
    "subject_id_of",
    "subjects_find",
    "subjects_of",
    "unseal",
]
