"""Classification tasks the graduation benchmark generates for itself (never shipped as
sample data): other label sets, wording and lengths than the sample library's reviews.

Each task is a hard prompt (system message, user template, six few-shot examples) and a
labelled test set of 240 rows built from templates with a seeded generator, so every run
of the benchmark sees the same data.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from workbench.core.models import FewShot, FewShotExample, Prompt, TestRow, TestSet

Filler = dict[str, list[str]]


def _fill(template: str, fillers: Filler, rng: random.Random) -> str:
    out = template
    for key, options in fillers.items():
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", rng.choice(options), 1)
    return out


TICKETS: dict[str, list[str]] = {
    "billing": [
        "I was charged twice for my {plan} subscription this month. Please refund the "
        "extra payment.",
        "Why did my invoice go up by {amount} dollars? Nobody told me about a price change.",
        "My card was declined when renewing the {plan} plan, but the bank says everything "
        "is fine. Can you check the payment?",
        "I cancelled last week and still got billed {amount} dollars today.",
        "Can I get a receipt with our company's VAT number for the {month} invoice?",
    ],
    "technical": [
        "The app crashes every time I {action} on my {device}.",
        "Since the last update, {feature} shows a blank screen and nothing loads.",
        "I get error code {code} when I try to {action}. I already reinstalled twice.",
        "Sync between my {device} and the website stopped working, changes never show up.",
        "{feature} is extremely slow today, pages take a minute to open.",
    ],
    "shipping": [
        "My order of {item} hasn't arrived yet and it has been {days} days.",
        "The tracking number you sent shows no movement since {month}. Where is my parcel?",
        "The {item} arrived with a broken box and the courier left it in the rain.",
        "Can you ship my {item} to a different address? I am moving next week.",
        "I received someone else's package instead of the {item} I ordered.",
    ],
    "account": [
        "I can't log in anymore, the password reset email never comes.",
        "Please change the email address on my account to my new work address.",
        "How do I add a second user to our team account?",
        "Someone logged into my account from {city} and it wasn't me. Please lock it.",
        "I want to delete my account and all my data.",
    ],
}
TICKET_FILLERS: Filler = {
    "plan": ["Basic", "Pro", "Team", "annual", "monthly"],
    "amount": ["12", "30", "49", "5", "100"],
    "month": ["January", "March", "June", "September", "November"],
    "action": ["upload a photo", "export a report", "open settings", "share a file"],
    "device": ["iPhone", "Android tablet", "laptop", "Chromebook"],
    "feature": ["The dashboard", "The calendar", "Search", "The reports page"],
    "code": ["E401", "500", "X-17", "0x80070005"],
    "item": ["headphones", "desk lamp", "winter jacket", "coffee grinder", "phone case"],
    "days": ["eight", "twelve", "three weeks of", "ten"],
    "city": ["Lisbon", "Toronto", "Seoul", "Nairobi"],
}

HEADLINES: dict[str, list[str]] = {
    "sports": [
        "{team} beat {team2} {score} to reach the cup final",
        "{player} signs a three-year deal with {team}",
        "Injury rules {player} out of the {event}",
        "{team} sack their coach after five straight defeats",
    ],
    "science": [
        "Astronomers spot {thing} orbiting a distant star",
        "New study links {habit} to better memory in older adults",
        "Researchers grow {thing} in the lab for the first time",
        "Deep-sea expedition finds {number} unknown species",
    ],
    "business": [
        "{company} shares fall {pct}% after weak quarterly results",
        "{company} to buy rival {company2} for {money}",
        "Inflation slows to {pct}% as energy prices ease",
        "{company} announces {number} job cuts amid restructuring",
    ],
    "politics": [
        "Parliament passes {law} after all-night debate",
        "Prime minister calls snap election for {month}",
        "Opposition leader resigns after {event} defeat",
        "Government unveils plan to reform {law}",
    ],
}
HEADLINE_FILLERS: Filler = {
    "team": ["City", "United", "Rovers", "the Hawks", "Real"],
    "team2": ["Athletic", "Wanderers", "the Lions", "Sporting"],
    "score": ["2-1", "3-0", "1-0", "4-2"],
    "player": ["Silva", "Okafor", "Lindqvist", "Tanaka"],
    "event": ["World Cup", "season opener", "regional", "championship"],
    "thing": ["a water-rich planet", "mini human livers", "a new crystal", "bacteria"],
    "habit": ["daily walking", "learning a language", "gardening", "reading"],
    "number": ["30", "120", "1,500", "dozens of"],
    "company": ["Acme", "Globex", "Initech", "Umbrella Corp"],
    "company2": ["Hooli", "Vandelay", "Stark Industries"],
    "pct": ["3", "12", "7.5", "2"],
    "money": ["$4bn", "€900m", "$12bn"],
    "law": ["the housing bill", "pension rules", "the data protection law"],
    "month": ["May", "October", "the spring"],
}


ASPECTS: dict[str, list[str]] = {
    "price": [
        "It works fine, honestly, but {amount} dollars for something this {small} is hard "
        "to justify when the {rival} costs half that.",
        "Nice enough {item}. I just wish I had waited for a sale, because at full price it "
        "feels like I overpaid.",
        "For what you get, the cost is steep. My old {item} did the same for a fraction.",
    ],
    "quality": [
        "The {item} looked great at first, but after {days} the {part} started to {fail}.",
        "Cheap plastic everywhere, and the {part} wobbled out of the box. It won't last.",
        "Mine came with a {part} that {fail} within the first week of normal use.",
    ],
    "delivery": [
        "The {item} itself is fine. It just took {days} to get here, and the box was "
        "crushed when it finally came.",
        "Ordered it for a birthday and it showed up {days} late; the tracking never updated once.",
        "Courier left the parcel in the rain by the gate. The {item} survived, the manual did not.",
    ],
    "service": [
        "When the {part} {fail}, I wrote to support three times and only got copy-pasted replies.",
        "The {item} is okay, but the help line kept me on hold for {minutes} minutes and "
        "then hung up.",
        "I asked a simple question about the warranty and the shop never answered.",
    ],
}
ASPECT_FILLERS: Filler = {
    "amount": ["80", "120", "45", "200"],
    "small": ["small", "basic", "simple", "plain"],
    "rival": ["store brand", "older model", "competitor's version"],
    "item": ["blender", "backpack", "desk chair", "kettle", "speaker"],
    "days": ["two weeks", "a month", "ten days", "three weeks"],
    "part": ["zip", "handle", "lid", "strap", "switch"],
    "fail": ["come loose", "crack", "stop working", "fall off"],
    "minutes": ["forty", "twenty", "ninety"],
}


def _rows(
    pools: dict[str, list[str]], fillers: Filler, count: int, rng: random.Random
) -> list[TestRow]:
    labels = list(pools)
    rows = []
    for i in range(count):
        label = labels[i % len(labels)]
        rows.append(
            TestRow(vars={"text": _fill(rng.choice(pools[label]), fillers, rng)}, expected=label)
        )
    rng.shuffle(rows)
    return rows


def _task(
    name: str,
    system: str,
    template: str,
    pools: dict[str, list[str]],
    fillers: Filler,
    seed: int,
) -> tuple[Prompt, TestSet]:
    rng = random.Random(seed)
    shots = _rows(pools, fillers, 6, rng)
    prompt = Prompt(
        name=name,
        system=system,
        user_template=template,
        few_shot=FewShot(examples=[FewShotExample(vars=r.vars, output=r.expected) for r in shots]),
    )
    test_set = TestSet(
        name=f"{name}: 240 generated rows",
        prompt_id=prompt.id,
        labels=list(pools),
        rows=_rows(pools, fillers, 240, rng),
    )
    return prompt, test_set


def ticket_routing(seed: int = 11) -> tuple[Prompt, TestSet]:
    return _task(
        "Ticket routing",
        "You route incoming customer support tickets to the right team. Read the "
        "ticket and answer with exactly one team name: billing (payments, invoices, "
        "refunds), technical (bugs, errors, crashes, slowness), shipping (deliveries, "
        "parcels, addresses) or account (logins, passwords, users, data).",
        "Ticket:\n{{ text }}\n\nTeam:",
        TICKETS,
        TICKET_FILLERS,
        seed,
    )


def headline_topic(seed: int = 23) -> tuple[Prompt, TestSet]:
    return _task(
        "Headline topic",
        "Label the news headline with its section: sports, science, business or politics.",
        "Headline: {{ text }}\nSection:",
        HEADLINES,
        HEADLINE_FILLERS,
        seed,
    )


def complaint_aspect(seed: int = 37) -> tuple[Prompt, TestSet]:
    return _task(
        "Complaint aspect",
        "Read the customer's product review and say what it mainly complains about: "
        "price, quality, delivery or service.",
        "Review: {{ text }}\nMain complaint:",
        ASPECTS,
        ASPECT_FILLERS,
        seed,
    )


GENERATED: dict[str, Callable[[], tuple[Prompt, TestSet]]] = {
    "tickets": ticket_routing,
    "headlines": headline_topic,
    "aspects": complaint_aspect,
}
