"""Each channel's text limit, counted the way the platform counts.

Limits (checked December 2026; platforms change them, so they live here, in one place):

- X: 280, weighted as twitter-text v3 does (the library X publishes for its own
  clients): code points in Latin and general-punctuation ranges weigh 1, others
  (CJK, most emoji) weigh 2, an emoji sequence weighs 2 as a whole, and every URL
  weighs 23 whatever its length (t.co wrapping). A link not written in the body is
  appended to the post, as X's composer does.
- Instagram: 2,200 characters per caption (Instagram Help Centre).
- Facebook: 63,206 characters per post (Meta's limit for Page posts).
- LinkedIn: 3,000 characters per post (LinkedIn Help, "share commentary").
- TikTok: 2,200 characters per caption: the limit of TikTok's Content Posting API,
  the route scheduling tools publish through (the app allows up to 4,000 for some
  accounts, but a post over 2,200 fails when scheduled).
- YouTube: 5,000 characters per video description (YouTube Help).
- Blog, forums, other: no limit set here.

Everything but X counts user-perceived characters (extended grapheme clusters),
so an emoji with a skin-tone modifier or a flag counts once.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

import regex

from app.engagements.models import Channel
from app.errors import N_

# The channels' display names (brand names are not translated; "Other" is).
CHANNEL_LABELS: dict[str, str] = {
    Channel.facebook: "Facebook",
    Channel.instagram: "Instagram",
    Channel.x: "X",
    Channel.linkedin: "LinkedIn",
    Channel.tiktok: "TikTok",
    Channel.youtube: "YouTube",
    Channel.blog: N_("Blog"),
    Channel.forums: N_("Forums"),
    Channel.other: N_("Other"),
}


@dataclass(frozen=True)
class ChannelRule:
    limit: int | None
    counting: Literal["graphemes", "x_weighted"]
    # Where the link goes when it is not in the body: appended to the text, or shown
    # as a link card beside it.
    link_in_text: bool


RULES: dict[str, ChannelRule] = {
    Channel.x: ChannelRule(280, "x_weighted", link_in_text=True),
    Channel.instagram: ChannelRule(2200, "graphemes", link_in_text=False),
    Channel.facebook: ChannelRule(63206, "graphemes", link_in_text=False),
    Channel.linkedin: ChannelRule(3000, "graphemes", link_in_text=False),
    Channel.tiktok: ChannelRule(2200, "graphemes", link_in_text=False),
    Channel.youtube: ChannelRule(5000, "graphemes", link_in_text=False),
    Channel.blog: ChannelRule(None, "graphemes", link_in_text=False),
    Channel.forums: ChannelRule(None, "graphemes", link_in_text=False),
    Channel.other: ChannelRule(None, "graphemes", link_in_text=False),
}
UNLIMITED = ChannelRule(None, "graphemes", link_in_text=False)

# twitter-text v3 configuration: weights are in hundredths, 100 in these ranges, 200 else.
X_TRANSFORMED_URL_LENGTH = 23
_X_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
# URLs as X recognises them in text: a scheme, or a bare domain with a known-looking TLD.
_URL = regex.compile(
    r"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.[a-z]{2,24}/[^\s<>\"']*",
    regex.IGNORECASE,
)
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")


def graphemes(text: str) -> int:
    """User-perceived characters (what most platforms' counters show)."""
    return len(regex.findall(r"\X", text))


def _x_weight(cluster: str) -> int:
    if _EMOJI.search(cluster):
        return 200  # twitter-text counts a whole emoji sequence as one heavy character
    total = 0
    for character in cluster:
        code = ord(character)
        light = any(low <= code <= high for low, high in _X_LIGHT_RANGES)
        total += 100 if light else 200
    return total


def x_weighted_length(text: str) -> int:
    """The length X's composer shows: URLs 23 each, heavy characters 2 (twitter-text v3)."""
    text = unicodedata.normalize("NFC", text)
    weight = 0
    position = 0
    for match in _URL.finditer(text):
        weight += sum(_x_weight(c) for c in regex.findall(r"\X", text[position : match.start()]))
        weight += X_TRANSFORMED_URL_LENGTH * 100
        position = match.end()
    weight += sum(_x_weight(c) for c in regex.findall(r"\X", text[position:]))
    return weight // 100


def rule_for(channel: str) -> ChannelRule:
    return RULES.get(channel, UNLIMITED)


def published_text(channel: str, body: str, link: str | None) -> str:
    """The text as the channel will carry it."""
    if link and rule_for(channel).link_in_text and link not in body:
        return f"{body.rstrip()}\n{link}" if body.strip() else link
    return body


def count(channel: str, text: str) -> int:
    if rule_for(channel).counting == "x_weighted":
        return x_weighted_length(text)
    return graphemes(text)


@dataclass(frozen=True)
class ChannelPreview:
    """How the post will look on one channel, and whether it fits."""

    channel: str
    label: str
    text: str
    link: str | None
    link_card: bool
    length: int
    limit: int | None

    @property
    def over(self) -> int:
        return max(0, self.length - self.limit) if self.limit is not None else 0

    @property
    def fits(self) -> bool:
        return self.over == 0


def previews(body: str, link: str | None, channels: list[str]) -> list[ChannelPreview]:
    """One preview per channel of the post, in the post's order."""
    shown: list[ChannelPreview] = []
    for channel in channels:
        rule = rule_for(channel)
        text = published_text(channel, body, link)
        shown.append(
            ChannelPreview(
                channel=channel,
                label=CHANNEL_LABELS.get(channel, channel),
                text=text,
                link=link,
                link_card=bool(link) and not rule.link_in_text,
                length=count(channel, text),
                limit=rule.limit,
            )
        )
    return shown


def over_limit(body: str, link: str | None, channels: list[str]) -> list[ChannelPreview]:
    """The channels the text does not fit in (empty when it fits everywhere)."""
    return [preview for preview in previews(body, link, channels) if not preview.fits]
