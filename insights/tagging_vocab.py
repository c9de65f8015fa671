"""The tagger's default vocabulary: how people write outcomes, reasons and non-outcomes in Slack.

Phrases are written in normalised form (lower case, punctuation removed, "&" as "and") and are
matched on whole words. `icp.yml` extends the reasons under `taxonomy.reasons`; a workspace's
corrections extend all of them.
"""

from __future__ import annotations

# Kind cues: phrase -> (kind, weight). A weight of 3 decides alone; 1-2 need support.
KIND_CUES: dict[str, tuple[str, float]] = {}


def _cues(kind: str, weight: float, phrases: str) -> None:
    for raw in phrases.split(","):
        phrase = " ".join(raw.split())
        if phrase:
            KIND_CUES[phrase] = (kind, weight)


# fmt: off
_cues("win", 3, """
    closed won, closed-won, closedwon, won the deal, won the business, we won, just won, won it,
    signed, has signed, have signed, just signed, they signed, contract signed,
    inked, inked the deal, got the signature, got the ink, signed the contract, signed the order form,
    they picked us, picked us, chose us, went with us, selected us, deal closed, deal is closed,
    signed with us, closed the deal, signed on, we landed, won against, beat,
    won over, new logo, new customer, welcome to the family, officially a customer,
    po received, po is in, purchase order, order form signed, paperwork is done, its official,
    it is official, done deal
""")
_cues("win", 2, "won, win, closed, wins, victory, secured, sealed, landed")
_cues("loss", 3, """
    closed lost, closed-lost, closedlost, we lost, lost the deal, lost the opp, lost the opportunity,
    lost out, lost to, they went with, went with, passed on us,
    decided against us, declined, not moving forward, wont move forward, will not move forward,
    not going forward, said no, turned us down, dropped us, no decision, went dark, ghosted,
    stalled out, killed the deal, deal is dead, deal died, is dead, dead deal, lost it, lost them,
    didnt pick us, did not pick us, didnt choose us, did not choose us, no go, no-go, walked away,
    opted for, stayed with, sticking with, status quo, disqualified, dq d, dqd, bailed,
    signed with, re signed with, resigned with
""")
_cues("loss", 2, "lost, lose, loss, losses, slipped away, fell through, passed")
_cues("renewal_loss", 3, """
    churned, churn, churning, not renewing, wont renew, will not renew, did not renew, didnt renew,
    not going to renew, decided not to renew, gave notice, given notice, giving notice,
    notice of non renewal, non renewal, nonrenewal, non-renewal, renewal lost, lost the renewal,
    lost renewal, not renewed, let the contract lapse, contract lapse, lapsed, offboarding,
    off boarding, pulled out, pulling out, leaving us, left us, moving off, moving away from us,
    ripped us out, ripping us out, replacing us, replaced us, switched to, switching to,
    no longer a customer, ending the contract, end the contract, terminate,
    cancelled their contract, canceled their contract, cancelled the contract,
    canceled the contract, cancelled their subscription, canceled their subscription,
    just cancelled, just canceled
""")
# Alone these need an account, a competitor or an amount in the message ("meeting cancelled").
_cues("renewal_loss", 2, "cancelled, canceled, cancelling, canceling, terminated, terminating, termination")
_cues("implementation_failure", 3, """
    rollout failed, roll out failed, rollout is dead, implementation failed, implementation is dead,
    implementation died, implementation fell apart, implementation collapsed, onboarding failed,
    go live cancelled, go-live cancelled, golive cancelled, go live canceled, go live failed,
    go-live failed, launch failed, deployment failed, failed rollout, failed implementation,
    failed onboarding, failed deployment, failed go live, failed go-live, failed the security,
    failed security, abandoned the rollout, abandoned the implementation, abandoned rollout,
    pulled the plug on the rollout, pulled the plug on the implementation, pulled the plug,
    rollout cancelled, rollout canceled, rollout halted, rollout stopped, implementation cancelled,
    implementation canceled, implementation halted, stalled rollout, rollout stalled, pilot failed,
    failed pilot, never went live, wont go live, did not go live, didnt go live, rollout blew up,
    implementation blew up, rollout fell apart, rollout collapsed, shelved the rollout,
    shelved the implementation, froze the rollout, rollout frozen, rollback, rolled back,
    formally stopped, closed the implementation, called off, project has been stopped,
    project was stopped, implementation was stopped, never made it past, closed without go live,
    rolled back for good, rollout over, never really got off the ground, never made it to go live,
    did not happen, didnt happen
""")
_cues("customer_win", 3, """
    upsell, upsold, up sell, upsold them, expansion, expanded, expanding, expand, added seats,
    more seats, extra seats, additional seats, added licenses, more licenses, additional licenses,
    cross sell, cross-sell, crosssell, cross sold, renewed early, early renewal, case study,
    reference customer, agreed to be a reference, be a reference, as a reference, reference call,
    referenceable, customer story, testimonial, rolled out to, rolling out to, second business unit,
    new business unit, new division, another team, more users, upgraded, upgrade, upgrading,
    bigger contract, grew the account, growing the account, added another, doubled, tripled,
    wall to wall, enterprise wide, company wide, named reference, co present, joint webinar,
    speak at our, rolling us out, roll us out, rolled us out, joint press release, speaking slot,
    true up, logo can go on, their logo on, onto our contract, to be reference, be reference
""")
# Idioms beyond the obvious: how deals are reported once the first word is not "won" or "lost".
_cues("win", 3, """
    ink is dry, the ink is dry, countersigned, countersign, executed the contract, contract executed,
    officially ours, is ours, are ours, came through, said yes, green light, green lit, greenlit,
    were in at, we are in at, nailed it, got it done, over the line, across the line,
    is a customer, customer as of, welcome aboard, signed up, bought it, placed the order,
    approved us, awarded us, we were awarded, won the rfp, won the tender, won the bid,
    accepted our proposal, accepted the proposal, gave us the nod, we got the deal, deal won,
    booked it, signed the paperwork, paper is back, papers are back, paperwork is back,
    returned the contract, on the dotted line, signed on the dotted line, closed the loop,
    they bought, purchased, is on board, are on board, on board with us, gone for us, going with us,
    go with us, went for us, signature received, signatures received, award confirmed,
    contract award, awarded to us, awarded us the, we are in, were in, came back to us,
    back as a customer, brand new customer, new customer as of, chose our, picked our, selected our,
    pulled the trigger, voted to approve, approve our contract, approved our contract,
    the award is ours, award is ours, agreement was executed, was executed, got it over the line,
    is coming back, coming back to us, became a customer, become a customer, po in hand, po landed,
    po arrived
""")
_cues("loss", 3, """
    beaten, got beaten, beat us, came second, runner up, second place, is a no, its a no, hard pass,
    decided not to move forward, not proceeding, wont proceed, will not proceed, ended up with,
    ended up signing with, ended up going with, chose to stay with, staying with, stay with their,
    kept their, renewed their existing, went cold, gone cold, no longer evaluating, dropped out,
    withdrew, killed the project, shelved the project, lost the bid, lost the rfp, lost the tender,
    didnt make the shortlist, not shortlisted, eliminated us, we were eliminated, it is dead,
    is gone, took it, not awarded to us, not awarded, unsuccessful, bid was unsuccessful, fizzled out,
    fizzled, rejection received, rejected us, cancelled the evaluation, canceled the evaluation,
    ended the evaluation, wont be coming back, not coming back, we are out, were out, lost marks,
    lost on cost, lost on price, lost on features, voted down, slipped through our fingers,
    deal died, died in legal, stopped answering, done there, decided to do nothing,
    status quo wins, opp lost, marking it lost, didnt make their shortlist, did not make their shortlist,
    stuck with the incumbent, stayed with the incumbent, build it in house, built it in house,
    too rich for their blood, do nothing this year, didnt pan out, did not pan out,
    happy where they are, wont be returning, not returning, quote withdrawn
""")
_cues("renewal_loss", 3, """
    wont be renewing, not be renewing, off the books, ended their subscription, ending their subscription,
    cancellation, cancelation, leaving us at term, leaving at term, sunset our, sunsetting our, sunset us,
    replaced us with, being replaced, lost as a customer, as a customer anymore, turned us off,
    shut us off, deactivated, closed their account, downgraded to zero, notice to terminate,
    handed in notice, walk at renewal, walking at renewal, churn confirmed, confirmed churn,
    is leaving, are leaving, leaving at the end of term, out at end of term, at end of term,
    wont continue, will not continue, not continuing, wound down the account, wound down,
    winding down, cancellation received, said goodbye, will not be extending, not extending,
    wont be extending, pulled the pin, stops as of, stopping as of, decommissioned us,
    decommissioned their instance, off the platform, off our platform, cancelled their instance,
    subscription lapse, at term, not re upping, not reupping
""")
_cues("implementation_failure", 3, """
    never got off the ground, never made it to production, never made it live, never launched,
    never got live, on ice, being unwound, unwound, unwinding, hit a wall, got pulled,
    terminated the implementation, cutover failed, migration failed, implementation terminated,
    project terminated, rollout terminated, stopped the rollout, stopped the implementation,
    derailed
""")
_cues("customer_win", 3, """
    moved up to, upgraded to, upgrade to, add on, addon, add-on, bought the, new modules, new module,
    second module, use our logo, logo on our, quote for the website, g2 review, reference-able,
    referenceable, doubled their footprint, footprint, extended the contract, bolted on,
    higher tier, premium tier, enterprise tier, platform tier, tier up
""")
# fmt: on

# Hashtags and their kinds ("#win", "#closedwon" ...), matched on the tag's normalised text.
HASHTAGS: dict[str, str] = {
    "win": "win", "won": "win", "wins": "win", "closedwon": "win", "cw": "win", "newlogo": "win",
    "newbiz": "win", "signed": "win", "dealwon": "win",
    "loss": "loss", "lost": "loss", "closedlost": "loss", "cl": "loss", "deallost": "loss",
    "losses": "loss",
    "churn": "renewal_loss", "churned": "renewal_loss", "renewalloss": "renewal_loss",
    "renewallost": "renewal_loss", "nonrenewal": "renewal_loss", "cancellation": "renewal_loss",
    "implfail": "implementation_failure", "implementationfailure": "implementation_failure",
    "implementationfail": "implementation_failure", "rolloutfail": "implementation_failure",
    "implfailure": "implementation_failure", "failedrollout": "implementation_failure",
    "expansion": "customer_win", "upsell": "customer_win", "customerwin": "customer_win",
    "reference": "customer_win", "casestudy": "customer_win", "crosssell": "customer_win",
    "customersuccess": "customer_win", "cswin": "customer_win",
}  # fmt: skip

# Emoji that lean one way; alone they never decide, they support a cue.
POSITIVE_EMOJI = frozenset(
    "tada rocket trophy champagne confetti_ball moneybag money_with_wings partying_face fire "
    "muscle raised_hands clap white_check_mark heavy_check_mark star-struck 100 medal "
    "sports_medal first_place_medal bell dollar".split()
)
NEGATIVE_EMOJI = frozenset(
    "x sob cry disappointed broken_heart skull rip coffin pensive face_palm facepalm "
    "-1 thumbsdown worried weary tired_face red_circle no_entry warning sweat".split()
)

# Words that make a loss a renewal loss: the customer already exists.
RENEWAL_CONTEXT = frozenset(
    "renewal renewals renew renewing renewed contract subscription customer customers account "
    "existing csm cs licence license licenses seats term".split()
)

# Words before a cue that make it not an outcome (within a few words, same clause).
NEGATIONS = frozenset(
    "not didnt dont doesnt havent hasnt never wasnt werent isnt arent wont cant couldnt nobody no".split()
)
HYPOTHETICALS = frozenset(
    "if might may could would should risk risky worried afraid concerned fear likely unless "
    "whether possibly potentially probably maybe hope hoping hopefully trying try tries planning "
    "plan going gonna about close almost nearly want wants wanted need needs expect expecting "
    "expected chance odds threat threatening threatened considering consider evaluating worst case "
    "reconsidering thinking waiting awaiting pending negotiating negotiation says propose "
    "proposing before until chasing will wed theyd goal aim target objective predict prediction "
    "calling looking".split()
)
# Words that open a question or a plan: a clause starting with them is not a report.
QUESTION_STARTS = frozenset(
    "who what when where why how which should shall can could would will did does do is are was "
    "were has have any anyone anybody".split()
)
# A clause about a future meeting ("demo with X next week", "call with Y tomorrow") reports no
# outcome: it needs one of the plan nouns and one of the future markers.
PLAN_NOUNS = frozenset(
    "meeting meet call demo sync lunch agenda kickoff qbr workshop presentation pitch "
    "onsite visit dinner conversation discussion kick kicks".split()
)
FUTURE_MARKERS = frozenset(
    "tomorrow next upcoming scheduled later tonight soon monday tuesday wednesday thursday "
    "friday january february march april june july august september october november "
    "december".split()
)
# Terms that contain an outcome word without reporting one ("win rate", "win-back"): a cue
# inside them does not count.
NEUTRAL_TERMS = frozenset({
    "win rate", "winrate", "win rates", "loss rate", "churn rate", "churn risk", "at risk",
    "risk of churn", "win loss", "win-loss", "win back", "winback", "win backs", "cut churn",
    "reduce churn", "reduced churn", "reducing churn", "lower churn", "churn down", "churn score",
    "churn prevention", "churn analysis", "closed lost reason", "closed won reason", "loss reason",
    "win reason", "lost reason", "land and expand", "zero churn", "no churn",
    "signed off", "sign off", "signs off", "signed the nda", "signed an nda", "nda signed",
    "signed the mutual nda", "reseller agreement", "partner agreement", "partnership agreement",
    "technical win", "tech win", "technical validation", "churn deep dive", "lost my", "lost the thread",
    "lost track", "lost the link", "lost the recording", "perdi",
    "won best", "won an award", "won the award", "upgrade to v", "upgraded to v", "version upgrade",
    "software upgrade", "nothing closed", "nothing lost", "nothing expanded", "nothing signed",
    "nothing churned",
})  # fmt: skip
# Phrases that report that an outcome did NOT happen ("still in play", "just slipped"): they
# cancel cues inside them and just before them.
NOT_OUTCOME_PHRASES = frozenset({
    "still in play", "still alive", "still open", "still in the running", "just slipped",
    "slipped to next quarter", "slipped to q", "pushed to next quarter", "not lost", "not dead",
    "havent lost", "didnt lose", "did not lose", "not churning", "not churned", "wont churn",
    "not cancelling", "not canceling", "saved the account", "saved the renewal", "save the renewal",
    "rescued", "talked them off the ledge", "back on track",
})  # fmt: skip
# A deal still in progress: these cancel every cue in their clause.
PENDING_PHRASES = frozenset({
    "proposal out", "sent the proposal", "sent a proposal", "sent our proposal", "quote out",
    "sent the quote", "sent a quote", "late stage", "in negotiation", "pending signature",
    "out for signature", "waiting on signature", "waiting for signature", "still no decision",
    "no decision yet", "in the pipeline", "in legal", "redlines", "our internal", "forecast call",
    "best case", "test record", "data hygiene", "duplicate", "merged into", "draft case study",
    "case study pipeline", "no approval yet", "not approved yet", "no answer yet", "at the awards",
    "content awards", "award ceremony", "awards night",
    "went smoothly",
    # history, not news: "churning last year was a mistake"
    "last year", "years ago", "a year ago", "used to", "in the past", "throwback", "fun fact",
    "was the year", "the year we", "very first", "first ever", "we ever", "history slide",
    # someone else's deal: "Gong just won a fintech logo, saw it on LinkedIn"
    "per their press release", "their press release", "according to", "apparently", "reportedly",
    "heard it from", "heard that",
    "rumor", "rumour", "rumours", "rumors", "not our deal", "not a deal for us", "good for them",
    "themselves", "their own customer", "own customer", "from them", "on linkedin", "saw it",
    "analyst briefing", "our partner", "their customer", "their customers",
})  # fmt: skip

# Expansion of an existing customer: a growth verb a few words before what grew.
EXPANSION_VERBS = frozenset(
    "add adding added adds expand expanding expanded extend extending extended rolling rolled "
    "roll grew growing grow doubling doubled bought buying purchased".split()
)
EXPANSION_OBJECTS = frozenset(
    "sites site regions region teams team division divisions department departments users seats "
    "licenses licences offices office units unit module modules products countries locations "
    "hospitals stores plants brands subsidiaries subsidiary workspaces arm mills factories "
    "entities entity".split()
)

# Reason codes: code -> phrases. Wins have reasons too ("won on price").
REASON_PHRASES: dict[str, tuple[str, ...]] = {
    "price": (
        "price", "prices", "pricing", "priced", "too expensive", "expensive", "cheaper", "cheap",
        "cost", "costs", "costly", "overpriced", "discount", "discounting", "undercut", "undercutting",
        "price point", "pricier", "more affordable", "affordable", "sticker shock", "too pricey", "pricey",
        "lower bid", "better deal", "half the price", "price war", "cheapest", "freemium",
        "for basically nothing", "for nothing", "bundled it", "bundled in", "for free", "lower quote",
        "quote was", "our number",
    ),
    "budget": (
        "budget", "budgets", "no budget", "budget cut", "budget cuts", "budget freeze", "funding",
        "spending freeze", "spend freeze", "hiring freeze", "cost cutting", "cost-cutting",
        "cutting costs", "belt tightening", "no money", "ran out of money", "out of budget",
        "capex", "opex", "fiscal", "frozen spend",
    ),
    "product_gap": (
        "product gap", "feature gap", "missing feature", "missing features", "lacked", "lacking",
        "lacks", "didnt have", "did not have", "doesnt have", "does not have", "no support for",
        "couldnt do", "could not do", "cant do", "cannot do", "gap in", "functionality", "feature",
        "features", "roadmap", "not on our roadmap", "capability", "capabilities", "reporting gap",
        "missing", "no native", "wasnt there", "limitations", "limitation", "we dont have",
        "dont have it", "simply dont have", "had no", "has no", "couldnt provide", "could not provide",
        "we dont do", "doesnt do", "needed native",
    ),
    "integration": (
        "integration", "integrations", "integrate", "integrates", "integrated", "connector",
        "connectors", "api", "apis", "sync with", "syncs with", "native sync", "plug into",
        "plugs into", "plug straight into", "plugs straight into", "hooks into", "hook into",
        "two way sync", "connected", "connect to", "works with their", "their stack", "tech stack",
        "sync", "synced", "syncing", "provisioning", "scim",
        "data warehouse",
        "snowflake connector", "salesforce integration", "hubspot integration",
    ),
    "security_compliance": (
        "security", "security review", "security sign off", "security signoff", "infosec",
        "info sec", "soc 2", "soc2", "soc ii", "iso 27001", "gdpr", "hipaa", "compliance",
        "compliant", "data residency", "pen test", "pentest", "penetration test",
        "dpa", "data processing", "procurement security", "vendor risk", "risk assessment",
        "sso", "ciso", "privacy", "regulator", "regulators", "regulatory", "regulation",
        "outsourcing rules", "outsourcing requirements", "data hosting", "hosting requirements",
        "eu hosting", "swiss hosting", "pci", "dpia", "fedramp", "baa", "audit paperwork",
        "audit trail", "works council", "cfr", "part 11", "failed validation",
    ),
    "timing": (
        "timing", "bad timing", "wrong time", "not now", "not this year", "next year",
        "next quarter", "later this year", "pushed out", "postponed", "delayed", "revisit",
        "not this season", "next season", "in the fall", "maybe later", "come back to it",
        "deprioritized", "deprioritised", "on hold", "paused", "priorities changed",
        "other priorities", "reorg", "re org", "reorganization", "reorganisation",
    ),
    "no_decision": (
        "no decision", "went dark", "gone dark", "ghosted", "ghosting", "stalled", "status quo",
        "do nothing", "did nothing", "decided to do nothing", "stopped responding",
        "unresponsive", "non responsive", "nonresponsive", "radio silence", "no response",
        "never decided", "indecision", "couldnt decide", "spreadsheets", "fizzled", "fizzled out",
        "make a call", "nobody owns it", "no one owns it", "gave up on it", "given up on it",
    ),
    "champion_loss": (
        "champion left", "champion leaving", "lost our champion", "lost the champion",
        "champion moved", "champion quit", "sponsor left", "exec sponsor left",
        "executive sponsor left", "our sponsor left", "champion departed", "champion is gone",
        "champion got laid off", "new vp", "new cio", "new cto", "new cfo", "new ceo",
        "new leadership", "leadership change", "our contact left", "main contact left",
        "his replacement", "her replacement", "their replacement", "new head of",
    ),
    "poor_fit": (
        "poor fit", "not a fit", "not a good fit", "bad fit", "wrong fit", "not our icp",
        "outside our icp", "outside icp", "too small", "too small for us", "too big", "too large",
        "wrong segment", "not a match", "not the right fit", "use case didnt fit", "bad icp fit",
        "never a fit", "should not have sold", "shouldnt have sold", "dont really need",
        "dont need", "at their size", "did not need", "didnt need",
    ),
    "adoption": (
        "adoption", "low adoption", "poor adoption", "usage", "low usage", "nobody used",
        "no one used", "didnt use", "did not use", "never used", "not using", "stopped using",
        "shelfware", "shelf ware", "didnt adopt", "did not adopt", "engagement", "logins",
        "logged in", "nobody logged in", "no one logged in", "usage flatlined", "ever used it",
        "people used it", "barely used", "rarely used", "never logged in",
        "user engagement", "active users", "utilization", "utilisation",
    ),
    "support": (
        "support", "support issues", "support tickets", "bad support", "slow support",
        "support experience", "response times", "response time", "sla", "slas", "escalations",
        "escalation", "customer service", "service issues", "ticket backlog",
    ),
    "implementation": (
        "implementation", "onboarding", "on boarding", "rollout", "roll out", "deployment",
        "time to value", "configuration", "data migration",
        "took too long to implement", "implementation took", "go live", "go-live",
        "professional services", "services team", "milestones", "onboarding team", "stalled for",
    ),
    "acquisition": (
        "acquired", "acquisition", "acquiring", "merger", "merged", "merging", "bought by",
        "parent company", "new owners", "new parent", "private equity", "corporate mandate",
        "consolidated vendors", "vendor consolidation", "consolidating vendors",
        "standardize on", "standardise on", "standardizing", "standardising",
    ),
    "sales_execution": (
        "sales execution", "we dropped the ball", "dropped the ball", "slow follow up",
        "slow follow-up", "slow to follow up", "follow up", "our demo", "weak demo",
        "bad demo", "poor demo", "we were late", "came in late", "too late", "single threaded",
        "single-threaded", "missed the deadline", "our proposal", "pricing mistake",
        "messed up", "our fault", "on us", "didnt multithread", "did not multithread",
        "multithread", "multi thread", "rep left", "handover", "hand over", "follow ups slipped",
        "felt pressured", "pushed too hard", "too early", "we promised", "overpromised",
        "follow-ups slipped",
    ),
    "relationship": (
        "relationship", "relationships", "trust", "rapport", "exec relationship",
        "executive relationship", "strong relationship", "great relationship",
        "good relationship", "bad relationship", "poor relationship", "existing relationship",
        "long relationship", "personal relationship", "friends with", "golf buddy",
        "incumbent relationship", "knew the cfo", "knew the ceo",
    ),
}  # fmt: skip

# Words ignored when reading a company name from text (sentence openers, people's words).
NOT_NAMES = frozenset(
    "i we you they he she it our their my the a an this that these those just so and but or "
    "deal deals update fyi heads up today yesterday monday tuesday wednesday thursday friday "
    "saturday sunday january february march april may june july august september october "
    "november december q1 q2 q3 q4 team cw cl stage outcome reason amount close date account "
    "opportunity opp new renewal lost won signed closed hey hi hello great big huge congrats "
    "congratulations kudos thanks thank shoutout shout out nice wow yay ugh oof sadly "
    "unfortunately finally officially".split()
)

# Upper-case abbreviations that are never account acronyms.
COMMON_ACRONYMS = frozenset(
    "api crm sla arr acv tcv mrr roi poc pov rfp rfi rfq ceo cfo cto cio coo cmo ciso vp svp evp "
    "qbr ebr emea apac latam na us usa uk eu sso soc gdpr hipaa iso it hr pm am pst est cet utc "
    "eod eow eoq eoy asap fyi tbd tbh imo nda msa sow dpa po ae sdr bdr csm cs se saas kpi okr "
    "ai ml bi erp hcm ats pos b2b b2c smb mm ent cw cl ok lol".split()
)
