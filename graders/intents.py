"""Label each candidate turn with the intent taxonomy of "Programming by Chat".

Tang et al., "Programming by Chat: A Large-Scale Behavioral Analysis of 11,579 Real-World
AI-Assisted IDE Sessions" (arXiv 2604.00436) coded 74,998 developer messages into eight
categories and 21 sub-categories; their codebook allows several labels per message,
ordered by dominance. We use their codes and names unchanged so that a session's profile
can be read against the paper's distributions. The rules below are ours: keyword and
shape signals for each code, in the spirit of the codebook's "key signals". An optional
LLM judge (graders.judge) can relabel turns with the same codes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

TAXONOMY: dict[str, tuple[str, str]] = {
    "1.1": ("Code Authoring", "New Implementation"),
    "1.2": ("Code Authoring", "Iterative Modification"),
    "1.3": ("Code Authoring", "Alignment Correction"),
    "2.1": ("Failure Reporting", "Log Paste"),
    "2.2": ("Failure Reporting", "Symptom Description"),
    "2.3": ("Failure Reporting", "Error Persistence"),
    "3.1": ("Inquiry", "Planning & Consultation"),
    "3.2": ("Inquiry", "Project Comprehension"),
    "3.3": ("Inquiry", "General Knowledge Query"),
    "4.1": ("Context Specification", "Information Injection"),
    "4.2": ("Context Specification", "Behavior Specification"),
    "5.1": ("Validation", "Code Review"),
    "5.2": ("Validation", "Runtime Inspection"),
    "6.1": ("Delegation", "Documentation"),
    "6.2": ("Delegation", "Toolchain Operation"),
    "7.1": ("Workflow Control", "Confirmation"),
    "7.2": ("Workflow Control", "Continuation"),
    "7.3": ("Workflow Control", "Deferred Debugging"),
    "7.4": ("Workflow Control", "Deferred Implementation"),
    "7.5": ("Workflow Control", "Sentiment Expression"),
    "8.1": ("Others", "Others"),
}
CATEGORIES = ("Code Authoring", "Failure Reporting", "Inquiry", "Context Specification", "Validation",
              "Delegation", "Workflow Control", "Others")
# Which label leads when a message carries several: corrections and failures say the most
# about why the message was sent, context labels the least.
DOMINANCE = ("1.3", "2.3", "2.1", "2.2", "7.3", "7.4", "1.1", "1.2", "5.1", "5.2", "3.1", "3.2", "3.3",
             "6.1", "6.2", "4.2", "4.1", "7.1", "7.2", "7.5", "8.1")

_I = re.I | re.M
_RULES: dict[str, re.Pattern[str]] = {
    "1.1": re.compile(r"\b(implement|create|build|add|introduce|generate|scaffold|set up|support|write (a |an |the )?"
                      r"(new )?(function|class|module|tests?|script|endpoint|method|component|parser|handler))\b", _I),
    "1.2": re.compile(r"\b(change|make it|update|instead|modify|rename|refactor|replace|move|simplify|tweak|"
                      r"adjust|extract|inline|reorder|clean up)\b", _I),
    "1.3": re.compile(r"(^\s*(no|nope|wrong)\b|not what i (asked|meant|wanted|said)|\bi meant\b|\bi said\b|"
                      r"\b(looks|seems|is|that'?s|this is) (wrong|off|not right|incorrect)\b|"
                      r"you misunderstood|you misread|that'?s not (it|right|true|correct)|that is not (it|right|true|"
                      r"correct)|you'?re wrong|you are wrong|i asked (for|you)|not true\b|isn'?t true)", _I),
    "2.1": re.compile(r"(Traceback \(most recent call last\)|^\s*File \".+\", line \d+|^E\s{2,}|^FAILED \S+|"
                      r"^\w+(Error|Exception): |npm ERR!|^error(\[\w+\])?: |panicked at|^\s+at \S+ \(.+:\d+:\d+\))",
                      re.M),
    "2.2": re.compile(r"\b(fails?|failing|failed|crash(es|ed)?|broken|breaks|doesn'?t work|does not work|"
                      r"not working|hangs?|wrong (result|output|value|answer)|returns? (the )?wrong|throws|"
                      r"blows up|regress(ed|ion)|does(n'?t| not) do anything|nothing happens|does nothing|"
                      r"swallows?( the)? (error|exception)s?|silently (ignores|drops|fails))\b", _I),
    "2.3": re.compile(r"\b(still (fails|failing|broken|not|doesn'?t|does not|errors?|raises|get(s|ting)?|the same)|"
                      r"same (error|problem|issue|failure)|didn'?t (work|help|fix)|did not (work|help|fix)|"
                      r"again\b.{0,40}\b(fail|error|broken))", _I),
    "3.1": re.compile(r"(\bshould (i|we)\b|\bis it better\b|\bwhat do you think\b|\blet'?s plan\b|\bmake a plan\b|"
                      r"\bplan (for|the|out)\b|\bbefore we start\b|\bhow should\b|"
                      r"\bwhich (approach|option|is better)\b|\bpros and cons\b|\bpropose\b|\boptions? for\b|"
                      r"\bwould it make sense\b)", _I),
    "3.2": re.compile(r"(\bhow (does|do|is|are)\b.*\?|\bwhat (does|do|is|are|did|happens)\b.*\?|"
                      r"\bwhere (is|are|do)\b|\bwhy (does|do|is|did)\b|\bexplain\b|\bwalk me through\b|"
                      r"\bwhat changed\b|\bwhat did you (change|do)\b)", _I),
    "3.3": re.compile(r"(^\s*what('s| is| are) [\w\s-]{1,30}\?\s*$|\bwhat is (a|an|the difference)\b|"
                      r"\bdifference between\b|\bhow do (i|you) .* in (git|python|bash|sql|docker)\b)", _I),
    "4.1": re.compile(r"(@[\w./-]+|\b[\w./-]+\.(py|js|ts|tsx|go|rs|java|rb|md|toml|json|ya?ml|cfg|ini|sql|sh)\b|"
                      r"```|\bhere is\b|\bfor context\b|\bfyi\b|\bnote that\b|\bthe (project|codebase|repo) uses\b|"
                      r"(^|[.!]\s+)we use\b|\bour (app|service|code|api)\b|"
                      r"\bsee (the )?\S+ (file|module|function)\b)", _I),
    "4.2": re.compile(r"(\bonly\b|\bdon'?t\b|\bdo not\b|\bnever\b|\balways\b|\bmust not\b|\bwithout\b|"
                      r"\bask me (before|first)\b|\bwait for me\b|\bstop (if|and|when)\b|\byou decide\b|"
                      r"\buse your (best )?judg(e)?ment\b|\byou are an? \b|\bact as\b|\bconstraints?\b|"
                      r"\bno new (dependencies|deps|libraries|packages)\b|\b(read|look at) \S+ first\b|"
                      r"\bfirst read\b|\bkeep \S+ as\b)", _I),
    "5.1": re.compile(r"(\breview\b|\bcheck (this|the|my|your) (code|diff|change|changes|implementation|logic)\b|"
                      r"\baudit\b|\bany issues\b|\bis (this|it) correct\b|\blook (over|at) the (code|diff)\b|"
                      r"\bverify (this|the|your|that)\b|\bedge cases?\b|\bdouble-check\b|\bsanity check\b)", _I),
    "5.2": re.compile(r"(\bcheck the (output|terminal|logs?|test (output|results?))\b|\bdid (the )?tests? pass\b|"
                      r"\blook at the (terminal|output|logs?)\b|\bsee what happened\b|\btest output\b|"
                      r"\bcheck if it (works|ran|passes)\b|\bwhat does the (output|log) say\b)", _I),
    "6.1": re.compile(r"(\breadme\b|\bdocumentation\b|\bdocs\b|\bchangelog\b|\brelease notes\b|\bdocstrings?\b|"
                      r"\bwrite (it|this|that) down\b|\b(write|create|update|add)\b.{0,40}\.md\b)", _I),
    "6.2": re.compile(r"(^\s*(run|execute|start|deploy|install|commit|push|merge|revert|undo|roll back|stash|"
                      r"delete|remove)\b|\brun the (tests?|suite|linter|build|app|server)\b|\brun (pytest|make|npm)\b|"
                      r"\bgit (commit|push|revert|reset|checkout|stash|rebase)\b)", _I),
    "7.1": re.compile(r"^\s*(yes|yep|yeah|ok(ay)?|correct|right|works|that works|looks good|lgtm|good|fine|"
                      r"sounds good|confirmed)[.! ]*$", _I),
    "7.2": re.compile(r"^\s*(continue|go( on| ahead)?|next|proceed|keep going|move on|try again|retry|carry on|"
                      r"resume)\b[^?]{0,40}$", _I),
    "7.3": re.compile(r"^\s*(please )?(just )?fix (it|this|that|them|the errors?|everything)\b[.! ]*(please)?[.!]*$",
                      _I),
    "7.4": re.compile(r"^\s*(please )?(just )?(do it|do the (brief|task|issue|ticket|work|rest)|implement (it|this|"
                      r"the (brief|task|issue|ticket|feature|rest))|make the (edit|edits|change|changes)|"
                      r"solve (it|this|the (brief|task|issue))|finish (it|this|the (task|brief)))\b[.! ]*$", _I),
    "7.5": re.compile(r"^\s*(thanks|thank you|thx|hello|hi|hey|wow|great job|awesome|amazing|nice|ugh|wtf|damn|"
                      r"cool)\b[^?]{0,30}$", _I),
}
_WORKFLOW = ("7.1", "7.2", "7.3", "7.4", "7.5")
_TERSE_WORDS = 10


@dataclass(frozen=True)
class TurnLabels:
    index: int
    """Event index of the user prompt."""
    labels: tuple[str, ...]
    """Codes ordered by dominance, e.g. ("1.1", "4.2")."""
    source: str = "rules"

    @property
    def primary(self) -> str:
        return self.labels[0]


def classify(text: str) -> tuple[str, ...]:
    """Intent codes of one message, the dominant first; ("8.1",) when nothing fits."""
    stripped = text.strip()
    if not stripped:
        return ("8.1",)
    terse = len(stripped.split()) < _TERSE_WORDS
    if terse:
        # Terse workflow messages are defined by their brevity: "fix it" names no failure.
        workflow = [code for code in _WORKFLOW if _RULES[code].search(stripped)]
        if workflow:
            return (min(workflow, key=DOMINANCE.index),)
    found = {code for code, pattern in _RULES.items() if code not in _WORKFLOW and pattern.search(stripped)}
    if stripped.endswith("?") and "2.1" not in found and found & {"2.2", "2.3"}:
        # "does the billing job still get the keys?" asks; it reports no failure.
        found -= {"2.2", "2.3"}
        found.add("3.2")
    if "2.3" in found:
        found.discard("2.2")  # persistence is the more specific failure report
    if "2.1" in found:
        found.discard("4.1")  # a pasted log names files, but it reports a failure, not context
    if "3.3" in found:
        found.discard("3.2")
    if not found:
        return ("8.1",)
    return tuple(sorted(found, key=DOMINANCE.index))


def category(code: str) -> str:
    return TAXONOMY.get(code, TAXONOMY["8.1"])[0]


def name(code: str) -> str:
    return TAXONOMY.get(code, TAXONOMY["8.1"])[1]


def profile(turns: list[TurnLabels]) -> dict[str, object]:
    """The session's intent profile: share of turns per category (by primary label) and every code count."""
    primary = Counter(category(turn.primary) for turn in turns)
    codes = Counter(code for turn in turns for code in turn.labels)
    total = len(turns)
    return {
        "turns": total,
        "categories": {cat: {"turns": primary.get(cat, 0),
                             "share": round(primary.get(cat, 0) / total, 3) if total else 0.0}
                       for cat in CATEGORIES},
        "codes": {code: codes[code] for code in TAXONOMY if codes.get(code)},
    }
