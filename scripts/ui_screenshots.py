"""Screenshots of the MLflow UI for docs/ (README): the experiments, a sweep's runs with its trials nested,
the best trial's metrics and its logged model, each in the "Model training" view.

    sweeplab sweep sweep=digits_cnn sweep.n_trials=8 sweep.workers=2      # in an empty folder
    sweeplab ui --port 5090 &
    python scripts/ui_screenshots.py --base http://127.0.0.1:5090 --store mlruns/mlflow.db --out docs/

Drives a headless Chromium over its DevTools protocol: each shot opens a URL, waits until the page shows
a text, runs a few clicks (close the assistant panel, expand the sweep's run, add the val/acc column),
then captures. Needs `chromium` on the PATH (apt-get install chromium) and aiohttp (installed with MLflow).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from itertools import count
from pathlib import Path

import aiohttp

WIDTH, HEIGHT = 1400, 1000
# The UI's "MLflow Assistant" side panel takes a third of the page: closed before each shot.
CLOSE_ASSISTANT = """(() => { const b = document.querySelector('button[aria-label="Close"]');
  if (b) b.click(); return Boolean(b); })()"""


class Page:
    def __init__(self, socket):
        self.socket, self.ids, self.pending = socket, count(1), {}

    async def send(self, method: str, **params):
        ident = next(self.ids)
        await self.socket.send_json({"id": ident, "method": method, "params": params})
        while True:
            message = await self.socket.receive_json()
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    async def wait_for_text(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.evaluate(f"document.body && document.body.innerText.includes({json.dumps(text)})"):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"the page never showed {text!r}")


async def shoot(port: int, shots: list[dict], base: str, out: Path) -> None:
    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
    page_target = next(t for t in targets if t["type"] == "page")
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(page_target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
        page = Page(socket)
        await page.send("Page.enable")
        await page.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1,
                        mobile=False)
        for shot in shots:
            await page.send("Page.navigate", url=base + shot["url"])
            await page.wait_for_text(shot["wait"])
            await asyncio.sleep(2)
            await page.evaluate(CLOSE_ASSISTANT)
            for action in shot.get("actions", []):
                print(f"{shot['file']}: {action[:60]!r} -> {await page.evaluate(action)}")
                await asyncio.sleep(2)
            await asyncio.sleep(1)
            image = await page.send("Page.captureScreenshot", format="png")
            (out / shot["file"]).write_bytes(base64.b64decode(image["data"]))
            print(f"wrote {out / shot['file']}")


CLICK_TEXT = """(() => {{ const e = Array.from(document.querySelectorAll({selector!r}))
  .find(x => x.innerText.trim() == {text!r}); if (e) e.click(); return Boolean(e); }})()"""
TYPE_SEARCH = """(() => {{ const i = document.querySelector({selector});
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(i, {text!r});
  i.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()"""


def shots_for(store: str) -> list[dict]:
    """The four shots, for the latest sweep in the store and its best trial."""
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiments = [e.experiment_id for e in client.search_experiments()]
    (parent,) = client.search_runs(experiments, "tags.`sweeplab.role` = 'sweep'",
                                   order_by=["attributes.start_time DESC"], max_results=1)
    experiment, best = parent.info.experiment_id, client.get_run(parent.data.tags["sweeplab.best_run_id"])
    model = best.outputs.model_outputs[-1].model_id
    view = "workflowType=machine_learning"
    return [
        {"file": "mlflow-ui-experiments.png", "url": f"/#/experiments?{view}",
         "wait": client.get_experiment(experiment).name},
        {"file": "mlflow-ui-sweep-runs.png", "url": f"/#/experiments/{experiment}?{view}", "wait": parent.info.run_name,
         "actions": ["document.querySelector('button[aria-label=\"Toggle sidebar\"]').click()",
                     "document.querySelector('button[data-component-id*=runnamecellrenderer]').click()",
                     CLICK_TEXT.format(selector="button", text="Columns"),
                     CLICK_TEXT.format(selector=".du-bois-light-tree-title", text="val/acc"),
                     "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}))"]},
        {"file": "mlflow-ui-trial-metrics.png",
         "url": f"/#/experiments/{experiment}/runs/{best.info.run_id}/model-metrics?{view}",
         "wait": best.info.run_name.split(" ")[0],
         "actions": [TYPE_SEARCH.format(selector=json.dumps('input[placeholder="Search metric charts"]'),
                                        text="val/")]},
        {"file": "mlflow-ui-logged-model.png", "url": f"/#/experiments/{experiment}/models/{model}?{view}",
         "wait": "test/acc"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the UI's address, e.g. http://127.0.0.1:5090")
    parser.add_argument("--store", required=True, help="the MLflow store the UI serves: PATH.db or sqlite:///PATH")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--port", type=int, default=9333, help="Chromium's DevTools port")
    args = parser.parse_args()
    profile = tempfile.mkdtemp(prefix="sweeplab-chromium-")
    browser = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         f"--remote-debugging-port={args.port}", f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/json/version").close()
                break
            except OSError:
                time.sleep(0.5)
        store = args.store if "://" in args.store else f"sqlite:///{Path(args.store).resolve()}"
        asyncio.run(shoot(args.port, shots_for(store), args.base.rstrip("/"), args.out))
    finally:
        browser.terminate()
        browser.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
