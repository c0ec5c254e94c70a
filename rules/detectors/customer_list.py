"""Customer-list exports: many distinct external addresses, or a spreadsheet of contacts."""

from __future__ import annotations

import re

from .base import Doc, Hit
from .emails import segment_addresses

NAME = "customer_list"
DESCRIPTION = "A body or attachment with many external addresses, or a contact spreadsheet"

_CONTACT_COLUMN = re.compile(
    r"e-?mail|mail|邮箱|邮件|電郵|phone|tel|mobile|cell|电话|手机|電話|whatsapp|wechat|微信|skype"
)
_NAME_COLUMN = re.compile(
    r"name|contact|customer|client|company|buyer|country|姓名|名字|联系人|聯絡人|客户|客戶|公司|国家|買家|买家"
)


def check(doc: Doc) -> list[Hit]:
    """A hit per body/attachment over the threshold and per contact spreadsheet."""
    pol = doc.policy
    hits: list[Hit] = []
    groups: dict[str, set[str]] = {}
    first_seg = {}
    for seg, addresses in zip(doc.segments, segment_addresses(doc)):
        if seg.region != "new":
            continue
        key = "body" if seg.where in ("body", "html") else seg.where
        found = groups.setdefault(key, set())
        first_seg.setdefault(key, seg)
        for _s, _e, address, _o in addresses:
            if not pol.is_company_domain(address.rpartition("@")[2]):
                found.add(address)
    for key, found in groups.items():
        if len(found) >= pol.list_threshold:
            sample = ", ".join(sorted(found)[:3])
            hits.append(Hit("CUSTOMER_LIST_EXPORT", f"{len(found)} addresses ({sample}, …)",
                            first_seg[key]))
    for sheet in doc.parsed.sheets:
        header = " ".join(h.lower() for h in sheet.header)
        if (sheet.rows >= pol.spreadsheet_min_rows and _CONTACT_COLUMN.search(header)
                and _NAME_COLUMN.search(header)):
            name = sheet.name
            att = name.split(":", 1)[0] if name.count(":") and not name.endswith(".csv") else name
            hits.append(Hit("CUSTOMER_LIST_SPREADSHEET", f"{name} ({sheet.rows} rows)", None,
                            where=f"attachment:{att}"))
    return hits
