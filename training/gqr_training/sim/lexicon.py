"""The word lists the simulated world's queries are made of: entities, aspects, modifiers.

Kept deliberately modest (about six hundred distinct words) so that a tiny language model trained
from scratch can learn them, and disjoint by kind (an entity phrase is never an aspect or a
modifier phrase) so that every hidden factor of the click model can be read back from the text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Domain:
    """One area of interest: its entities (topics), the aspects users ask about, modifiers."""

    name: str
    entities: tuple[str, ...]
    aspects: tuple[str, ...]
    modifiers: tuple[str, ...]


def _d(name: str, entities: str, aspects: str, modifiers: str) -> Domain:
    def split(s: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in s.split(",") if p.strip())

    return Domain(name, split(entities), split(aspects), split(modifiers))


DOMAINS: tuple[Domain, ...] = (
    _d(
        "travel",
        "pocono mountains, grand canyon, lake tahoe, yellowstone park, banff national park, "
        "kyoto temples, lisbon old town, santorini island, iceland ring road, amalfi coast, "
        "cape cod, machu picchu, bali beaches, prague castle",
        "hotels, things to do, weather, hiking trails, restaurants, getting there, best time to"
        " visit, camping, tours, packing list, parking",
        "in winter, with kids, on a budget, for couples, near airport, this weekend, luxury, "
        "for first timers",
    ),
    _d(
        "finance",
        "403b plan, roth ira, index funds, mortgage refinance, credit score, student loans, "
        "health savings account, treasury bonds, dividend stocks, emergency fund, fixed "
        "annuities, capital gains tax, crypto wallet, car insurance",
        "contribution limits, withdrawal rules, fees, tax benefits, eligibility, interest "
        "rates, how to open, risks, calculator, rollover",
        "for retirees, for self employed, after 50, for beginners, with low income, filing "
        "jointly, penalty free, long term",
    ),
    _d(
        "health",
        "type 2 diabetes, migraine headaches, vitamin d, knee pain, high blood pressure, "
        "insomnia disorder, gluten intolerance, asthma attacks, seasonal allergies, back pain, "
        "iron deficiency anemia, severe sunburn, kidney stones, acid reflux",
        "symptoms, treatment, diet, causes, exercises, side effects, diagnosis, prevention, "
        "home remedies, seeing a doctor",
        "in children, during pregnancy, for seniors, at night, natural, without medication, in "
        "athletes, chronic",
    ),
    _d(
        "pets",
        "designer dogs, golden retriever, maine coon, australian labradoodle, french bulldog, "
        "african grey parrot, bearded dragon, guinea pig, pet goldfish, siberian husky, siamese"
        " cat, dwarf hamster, border collie, pet rabbit",
        "training, food, grooming, lifespan, health problems, price, temperament, breeders, "
        "toys, adoption",
        "for apartments, for puppies, for seniors, indoor, for allergies, first time owners, "
        "hypoallergenic, small breed",
    ),
    _d(
        "cooking",
        "sourdough bread, tonkotsu ramen, beef lasagna, banana bread, seafood paella, chicken "
        "curry, pad thai, chocolate cake, homemade guacamole, beef pho, mushroom risotto, tacos"
        " al pastor, buttermilk pancakes, napa cabbage kimchi",
        "recipe, ingredients, calories, cooking time, substitutes, storage, origin, variations,"
        " nutrition facts, equipment",
        "vegan, gluten free, easy, in air fryer, for two, quick, authentic, slow cooker",
    ),
    _d(
        "tech",
        "python programming, raspberry pi, home wifi router, mechanical keyboard, gaming "
        "laptop, linux server, smart thermostat, noise cancelling headphones, 3d printer, "
        "password manager, cloud backup, electric scooter, fitness smartwatch, vpn service",
        "setup, reviews, troubleshooting, comparison, specs, tutorial, battery life, "
        "accessories, alternatives, security",
        "for beginners, under 100 dollars, for students, open source, step by step, 2025 model,"
        " wireless, for gaming",
    ),
    _d(
        "history",
        "port arthur massacre, kursk submarine, french revolution, roman empire, apollo 11, "
        "berlin wall, titanic sinking, silk road, cold war, ming dynasty, battle of hastings, "
        "aztec empire, black death, industrial revolution",
        "timeline, causes, aftermath, key figures, documentary, maps, facts, legacy, books, "
        "controversy",
        "for kids, summary, in 5 minutes, primary sources, in pictures, explained simply, "
        "detailed, for school project",
    ),
    _d(
        "sports",
        "world cup 1998, tour de france, wimbledon championships, nba finals, boston marathon, "
        "super bowl, olympic swimming, formula 1, cricket world cup, stanley cup, ryder cup, "
        "rugby world cup, ironman triathlon, chess olympiad",
        "results, tickets, schedule, highlights, records, rules, history, players, prize money,"
        " live stream",
        "this year, final round, all time, womens, on tv, free, in europe, stats",
    ),
    _d(
        "education",
        "teach yourself programming, sat exam, mba degree, learn spanish, online courses, "
        "homeschooling curriculum, medical school, coding bootcamp, gre test, study abroad, phd"
        " application, college scholarships, typing skills, public speaking",
        "requirements, cost, best resources, practice tests, tips, duration, career outcomes, "
        "deadlines, ranking, application process",
        "for adults, part time, for free, in 3 months, for working parents, self paced, "
        "international students, certified",
    ),
    _d(
        "home",
        "solar panels, kitchen remodel, heat pump, hardwood floors, leaky faucet, mold removal,"
        " vegetable garden, roof repair, bathroom tiles, wood stove, smart lock, pool "
        "maintenance, window insulation, backyard composting",
        "cost, installation, diy guide, maintenance, contractors, permits, materials, energy "
        "savings, common mistakes, tools needed",
        "for small spaces, on a budget, in cold climate, rental friendly, eco friendly, weekend"
        " project, professional, old house",
    ),
    _d(
        "cars",
        "tesla model 3, toyota prius, ford f150, honda civic, electric vehicles, used cars, car"
        " leasing, winter tires, car dashcam, ev charging, jeep wrangler, subaru outback, "
        "motorcycle license, hybrid suv",
        "price, range, safety rating, reliability, insurance cost, test drive, warranty, fuel "
        "economy, resale value, recalls",
        "used, certified pre owned, for families, in snow, base model, near me, lease deal, "
        "long distance",
    ),
    _d(
        "careers",
        "software engineer, nurse practitioner, data scientist, electrician apprenticeship, "
        "pilot training, remote work, freelance writing, teacher certification, real estate "
        "agent, ux designer, project manager, paramedic training, graphic designer, chartered "
        "accountant",
        "salary, job outlook, interview questions, resume tips, skills, certifications, day in "
        "the life, work life balance, career path, job boards",
        "entry level, without degree, career change, in europe, part time, senior level, high "
        "paying, work from home",
    ),
)

# Words that pad a query without adding meaning: a query made of the user's words plus these is a
# near-copy. Kept apart from every content phrase.
FILLERS: tuple[str, ...] = (
    "about",
    "info",
    "information",
    "what is",
    "the",
    "guide",
    "overview",
    "explained",
    "all about",
    "more on",
)

# Topic-free queries a lazy recommender produces: related to nothing in particular.
GENERIC_QUERIES: tuple[str, ...] = (
    "learn more",
    "related topics",
    "more details",
    "other questions",
    "see more results",
    "similar searches",
    "popular searches",
    "tell me more",
    "what else",
    "latest news",
)

# Modifiers that fit any domain; appended to queries of every topic.
GLOBAL_MODIFIERS: tuple[str, ...] = ("best", "top rated", "near me now", "2025")
