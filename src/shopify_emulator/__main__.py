"""`python -m shopify_emulator`: run the emulator until interrupted, printing its URL."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from shopify_emulator.config import CatalogShape, EmulatorConfig, ShopConfig
from shopify_emulator.faults import FAULT_KINDS, Fault
from shopify_emulator.server import start_in_thread
from shopify_emulator.state import TOPICS, EmulatorState, WebhookSubscription

DEFAULTS = EmulatorConfig()


def _shops(spec: str, seed: int, plan: str) -> list[ShopConfig]:
    shops = []
    for item in spec.split(","):
        parts = item.strip().split(":")
        shops.append(
            ShopConfig(
                name=parts[0],
                products=int(parts[1]) if len(parts) > 1 else 100,
                seed=int(parts[2]) if len(parts) > 2 else seed,
                plan=parts[3] if len(parts) > 3 else plan,  # type: ignore[arg-type]
            )
        )
    return shops


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shopify_emulator", description=__doc__)
    p.add_argument(
        "--shops", default="demo:1000", help="name:products[:seed[:plan]],... (default demo:1000)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--plan", default="standard", choices=["standard", "advanced", "plus", "enterprise"]
    )
    p.add_argument("--client-id", default=DEFAULTS.client_id)
    p.add_argument("--client-secret", default=DEFAULTS.client_secret)
    p.add_argument("--api-client-id", type=int, default=DEFAULTS.api_client_id)
    p.add_argument("--compliance-url", default=None)
    p.add_argument(
        "--webhook-url", default=None, help="subscribe every topic of every shop to this URL"
    )
    p.add_argument(
        "--webhook-time-scale", "--time-scale", dest="time_scale", type=float, default=1.0
    )
    p.add_argument("--webhook-timeout", type=float, default=5.0)
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        help=f"shop:kind[:count], kinds: {', '.join(FAULT_KINDS)}",
    )
    p.add_argument("--bulk-lines-per-s", type=float, default=0.0, help="0 = as fast as possible")
    p.add_argument(
        "--bulk-child-order", default="shuffled", choices=["grouped", "shuffled", "children_first"]
    )
    p.add_argument("--bulk-dir", default=None)
    p.add_argument(
        "--bulk-workers",
        type=int,
        default=DEFAULTS.bulk_workers,
        help="processes writing a whole-catalog export (default: CPU count, at most 4)",
    )
    p.add_argument(
        "--bulk-url-ttl", type=float, default=DEFAULTS.bulk_url_ttl_s, help="life of result URLs, s"
    )
    p.add_argument(
        "--access-token-ttl",
        type=float,
        default=DEFAULTS.access_token_ttl_s,
        help="life of expiring access tokens, s (refresh tokens keep theirs)",
    )
    p.add_argument(
        "--public-base-url",
        default="",
        help="base of result-file URLs, e.g. https://storage.googleapis.com behind a TLS proxy "
        "(default: the emulator's own http://HOST:PORT)",
    )
    p.add_argument("--variants-mean", type=float, default=3.0)
    p.add_argument("--variants-max", type=int, default=2048)
    p.add_argument("--metafields-per-product", type=float, default=2.0)
    p.add_argument("--metafields-per-variant", type=float, default=1.0)
    p.add_argument("--locations", type=int, default=2)
    p.add_argument("--api-version", default="2026-01")
    p.add_argument("--log-level", default="warning")
    return p


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    config = EmulatorConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        api_client_id=args.api_client_id,
        compliance_url=args.compliance_url,
        shops=_shops(args.shops, args.seed, args.plan),
        catalog=CatalogShape(
            variants_mean=args.variants_mean,
            variants_max=args.variants_max,
            metafields_per_product=args.metafields_per_product,
            metafields_per_variant=args.metafields_per_variant,
            locations=args.locations,
        ),
        bulk_lines_per_s=args.bulk_lines_per_s,
        bulk_child_order=args.bulk_child_order,
        time_scale=args.time_scale,
        webhook_timeout_s=args.webhook_timeout,
        default_api_version=args.api_version,
        bulk_workers=max(1, args.bulk_workers),
        bulk_url_ttl_s=args.bulk_url_ttl,
        access_token_ttl_s=args.access_token_ttl,
        public_base_url=args.public_base_url.rstrip("/"),
    )
    if args.bulk_dir:
        config.bulk_dir = args.bulk_dir
    return config


def apply_startup(state: EmulatorState, args: argparse.Namespace) -> None:
    for spec in args.fault:
        parts = spec.split(":")
        shop = state.shop_named(parts[0])
        if shop is None or len(parts) < 2:
            raise SystemExit(f"bad --fault {spec!r}: want shop:kind[:count]")
        shop.faults.set(Fault(kind=parts[1], count=int(parts[2]) if len(parts) > 2 else None))
    if args.webhook_url:
        for shop in state.shops.values():
            for topic in TOPICS:
                sub = WebhookSubscription(
                    id=state.next_id(),
                    topic=topic,
                    uri=args.webhook_url,
                    client_id=state.config.client_id,
                    api_version=args.api_version,
                    created_at="2026-01-01T00:00:00Z",
                )
                shop.subscriptions[sub.id] = sub


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = build_config(args)
    running = start_in_thread(config, port=args.port, host=args.host, log_level=args.log_level)
    apply_startup(running.app.state.emulator, args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    shops = ", ".join(f"{s.domain} ({s.products} products)" for s in config.shops)
    print(f"shopify emulator listening on {running.base_url} for {shops}", flush=True)  # noqa: T201 - the one place that talks to a terminal
    stop.wait()
    running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
