"""A small Romanian/English product paraphrase set: what the local model's docs measure.

Each row: an English product text, a Romanian product text meaning the same, and a short query of
each language phrased differently from both. Retrieval asks whether a query's nearest text is its own.
"""

from __future__ import annotations

from neanelu.search.provider import EmbeddingProvider

ROWS: tuple[tuple[str, str, str, str], ...] = (
    (
        "Men's waterproof leather hiking boots",
        "Bocanci de drumeție din piele, impermeabili, pentru bărbați",
        "boots for mountain walking in the rain",
        "încălțăminte de munte care nu lasă apa să intre",
    ),
    (
        "Stainless steel chef's kitchen knife, 20 cm blade",
        "Cuțit de bucătar din oțel inoxidabil, lamă de 20 cm",
        "sharp blade for cooking",
        "cuțit ascuțit pentru gătit",
    ),
    (
        "Women's red cotton summer dress",
        "Rochie de vară din bumbac, roșie, pentru femei",
        "light red dress for hot weather",
        "rochie roșie ușoară pentru zilele călduroase",
    ),
    (
        "Wooden dining table for six people",
        "Masă din lemn pentru sufragerie, șase persoane",
        "large table to eat with family",
        "masă mare la care mănâncă toată familia",
    ),
    (
        "Ceramic coffee mug, 350 ml",
        "Cană de cafea din ceramică, 350 ml",
        "cup for hot drinks",
        "recipient pentru băuturi calde",
    ),
    (
        "Kids' school backpack with padded straps",
        "Ghiozdan pentru copii cu bretele căptușite",
        "bag children carry to class",
        "geantă pe care copiii o duc la școală",
    ),
    (
        "LED desk lamp with adjustable arm",
        "Lampă de birou LED cu braț reglabil",
        "light for reading at a desk",
        "lumină pentru citit la birou",
    ),
    (
        "Wireless noise-cancelling headphones",
        "Căști wireless cu anularea zgomotului",
        "headset that blocks outside sound",
        "căști care opresc sunetele din jur",
    ),
    (
        "Organic extra virgin olive oil, 1 litre",
        "Ulei de măsline extravirgin organic, 1 litru",
        "bottle of oil for salads",
        "sticlă de ulei pentru salată",
    ),
    (
        "Men's wool winter coat, charcoal grey",
        "Palton de iarnă din lână pentru bărbați, gri închis",
        "warm jacket for cold weather",
        "haină groasă pentru frig",
    ),
    (
        "Yoga mat, non-slip, 6 mm thick",
        "Saltea de yoga antiderapantă, grosime 6 mm",
        "mat for exercising on the floor",
        "covoraș pentru exerciții pe podea",
    ),
    (
        "Children's picture book about animals",
        "Carte ilustrată pentru copii despre animale",
        "illustrated story for kids with pets and wildlife",
        "poveste cu imagini pentru cei mici despre vietăți",
    ),
)


def top1_accuracy(similarity: list[list[float]]) -> float:
    """Share of rows whose highest-scoring column is their own (row i -> column i)."""
    hits = sum(
        1 for i, row in enumerate(similarity) if max(range(len(row)), key=row.__getitem__) == i
    )
    return hits / len(similarity)


def paraphrase_report(provider: EmbeddingProvider) -> dict[str, float]:
    """Top-1 retrieval accuracy of queries against texts, for each pair of languages."""
    en_text, ro_text, en_query, ro_query = (
        provider.embed([row[i] for row in ROWS]).vectors for i in range(4)
    )
    pairs = {
        "en->en": (en_query, en_text),
        "ro->ro": (ro_query, ro_text),
        "ro->en": (ro_query, en_text),
        "en->ro": (en_query, ro_text),
        "ro_text->en_text": (ro_text, en_text),
    }
    return {name: top1_accuracy((q @ t.T).tolist()) for name, (q, t) in pairs.items()}
