"""The metric dictionary (DOMAIN.md §2), held once for the whole product.

Each metric has its funnel stage in ACDAA (Awareness, Consideration, Decision,
Adoption, Advocacy) and says whether it is a *business measure* or an
*indicator*: "social metrics are indicators, not measures". ROI is a money
result, never a follower count.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Unit(enum.StrEnum):
    quantity = "count"
    money = "money"
    percent = "percent"  # stored as a fraction: 0.035 is 3.5 %
    ratio = "ratio"
    minutes = "minutes"
    score = "score"  # NPS: -100 … 100


class Funnel(enum.StrEnum):
    awareness = "awareness"
    consideration = "consideration"
    decision = "decision"
    adoption = "adoption"
    advocacy = "advocacy"


class Kind(enum.StrEnum):
    measure = "measure"  # a business measure: sales, coupons, conversions, NPS…
    indicator = "indicator"


@dataclass(frozen=True)
class Metric:
    key: str
    name_en: str
    name_es: str
    unit: Unit
    formula_en: str
    formula_es: str
    stages: tuple[Funnel, ...]
    kind: Kind

    @property
    def is_business_measure(self) -> bool:
        return self.kind is Kind.measure

    def name(self, language: str) -> str:
        return self.name_es if language == "es" else self.name_en

    def formula(self, language: str) -> str:
        return self.formula_es if language == "es" else self.formula_en


A, C, D, Ad, Av = (
    Funnel.awareness,
    Funnel.consideration,
    Funnel.decision,
    Funnel.adoption,
    Funnel.advocacy,
)
BM, IND = Kind.measure, Kind.indicator

METRICS: tuple[Metric, ...] = (
    Metric("impressions", "Impressions (Meta: Views)", "Impresiones (Meta: Visualizaciones)", Unit.quantity,
           "times displayed", "veces mostrado", (A,), IND),
    Metric("reach", "Reach", "Alcance", Unit.quantity,
           "unique viewers; never summed across posts, days or platforms",
           "espectadores únicos; nunca se suma entre publicaciones, días o plataformas", (A,), IND),
    Metric("cpm", "CPM", "CPM", Unit.money, "cost ÷ impressions × 1000",
           "coste ÷ impresiones × 1000", (A,), IND),
    Metric("cpi", "Cost per impression", "Coste por impresión", Unit.money,
           "cost ÷ impressions", "coste ÷ impresiones", (A,), IND),
    Metric("share_of_voice", "Share of voice", "Cuota de voz", Unit.percent,
           "brand mentions ÷ (brand + competitors' mentions)",
           "menciones de la marca ÷ (menciones de la marca + de la competencia)", (A,), IND),
    Metric("engagement_rate_reach", "Engagement rate by reach", "Tasa de interacción por alcance",
           Unit.percent, "engagements ÷ reach", "interacciones ÷ alcance", (C,), IND),
    Metric("engagement_rate_impressions", "Engagement rate by impressions",
           "Tasa de interacción por impresiones", Unit.percent, "engagements ÷ impressions",
           "interacciones ÷ impresiones", (C,), IND),
    Metric("ctr", "Click-through rate", "Tasa de clics (CTR)", Unit.percent,
           "link clicks ÷ impressions", "clics en enlaces ÷ impresiones", (C,), IND),
    Metric("conversions", "Conversions", "Conversiones", Unit.quantity,
           "agreed conversion events attributed", "eventos de conversión acordados atribuidos",
           (D,), BM),
    Metric("conversion_rate", "Conversion rate", "Tasa de conversión", Unit.percent,
           "conversions ÷ sessions (or ÷ clicks, stated)",
           "conversiones ÷ sesiones (o ÷ clics, indicado)", (D,), BM),
    Metric("coupon_redemptions", "Coupon redemptions", "Cupones canjeados", Unit.quantity,
           "redemptions of the engagement's codes", "canjes de los códigos de la colaboración",
           (D,), BM),
    Metric("revenue", "Revenue attributed", "Ingresos atribuidos", Unit.money,
           "value of attributed orders", "valor de los pedidos atribuidos", (D, Ad), BM),
    Metric("roi", "ROI", "ROI", Unit.percent,
           "(revenue − total cost) ÷ total cost; cost = fees + ad spend + production",
           "(ingresos − coste total) ÷ coste total; coste = honorarios + inversión publicitaria + producción",
           (A, C, D, Ad, Av), BM),
    Metric("roas", "ROAS", "ROAS", Unit.ratio, "revenue ÷ ad spend",
           "ingresos ÷ inversión publicitaria", (D,), BM),
    Metric("cpa", "Cost per acquisition", "Coste por adquisición", Unit.money,
           "total cost ÷ new customers", "coste total ÷ clientes nuevos", (D,), BM),
    Metric("positive_sentiment", "Positive sentiment share", "Proporción de sentimiento positivo",
           Unit.percent, "positive ÷ all coded mentions", "positivas ÷ todas las menciones codificadas",
           (Ad,), IND),
    Metric("first_response_time", "First response time", "Tiempo de primera respuesta",
           Unit.minutes, "median received → first reply; % within SLA",
           "mediana de recibido → primera respuesta; % dentro del SLA", (Ad,), IND),
    Metric("resolution_time", "Resolution time", "Tiempo de resolución", Unit.minutes,
           "median opened → resolved", "mediana de abierto → resuelto", (Ad,), IND),
    Metric("resolution_rate", "Resolution rate", "Tasa de resolución", Unit.percent,
           "resolved ÷ cases", "resueltos ÷ casos", (Ad,), IND),
    Metric("nps", "Net Promoter Score", "Net Promoter Score (NPS)", Unit.score,
           "% 9–10 − % 0–6", "% 9–10 − % 0–6", (Ad, Av), BM),
    Metric("brand_preference", "Brand preference", "Preferencia de marca", Unit.percent,
           "% preferring the brand over a named competitor",
           "% que prefiere la marca frente a un competidor concreto", (C, D), BM),
    Metric("earned_impressions", "Earned impressions", "Impresiones ganadas", Unit.quantity,
           "impressions of items posted by others", "impresiones de contenidos publicados por otros",
           (Av,), IND),
    Metric("ugc_count", "User-generated content", "Contenido generado por usuarios", Unit.quantity,
           "qualifying items by non-brand users", "contenidos válidos de usuarios ajenos a la marca",
           (Av,), IND),
    Metric("far_frequency", "FAR: frequency", "FAR: frecuencia", Unit.ratio,
           "purchases per customer per period", "compras por cliente y periodo", (Ad,), BM),
    Metric("far_reach", "FAR: customer reach", "FAR: alcance de clientes", Unit.quantity,
           "net new customers (customers, not viewers)",
           "clientes nuevos netos (clientes, no espectadores)", (D,), BM),
    Metric("far_yield", "FAR: yield", "FAR: rendimiento", Unit.money,
           "revenue ÷ transactions", "ingresos ÷ transacciones", (Ad,), BM),
    # Inputs of the formulas above (ROI's costs, CTR's clicks…), reported like any other row.
    Metric("ad_spend", "Ad spend", "Inversión publicitaria", Unit.money,
           "paid media spent on the engagement's ads", "medios pagados en los anuncios de la colaboración",
           (A, C, D), IND),
    Metric("production_cost", "Production cost", "Coste de producción", Unit.money,
           "photo, video and other production paid for", "foto, vídeo y otra producción pagada",
           (A, C, D, Ad, Av), IND),
    Metric("engagements", "Engagements", "Interacciones", Unit.quantity,
           "reactions, comments, shares and saves", "reacciones, comentarios, compartidos y guardados",
           (C,), IND),
    Metric("link_clicks", "Link clicks", "Clics en enlaces", Unit.quantity,
           "clicks on the post's links", "clics en los enlaces de la publicación", (C,), IND),
    Metric("sessions", "Sessions", "Sesiones", Unit.quantity,
           "site sessions arriving from social", "sesiones del sitio llegadas desde redes sociales",
           (C, D), IND),
    Metric("transactions", "Transactions", "Transacciones", Unit.quantity,
           "attributed orders", "pedidos atribuidos", (D, Ad), BM),
)  # fmt: skip

BY_KEY: dict[str, Metric] = {metric.key: metric for metric in METRICS}


def get_metric(key: str) -> Metric | None:
    return BY_KEY.get(key)
