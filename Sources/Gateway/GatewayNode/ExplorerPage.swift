/// The explorer served at `GET /`: one self-contained page (inline CSS and JavaScript, no external assets,
/// so it works on a gateway with no internet access) that polls the JSON API once a second.
///
/// Everything shown comes from the public API, so the page is also a living example of how to use it.
/// Values are inserted with `textContent`, never as HTML, so nothing from the chain can inject markup.
enum ExplorerPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Amarscity explorer</title>
        <style>
          :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2733; --muted:#6b7785; --line:#e3e7ec; --accent:#0b7a5a; }
          * { box-sizing: border-box; }
          body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg);
                 color:var(--ink); }
          header { background:var(--ink); color:#fff; padding:14px 24px; display:flex; align-items:baseline; gap:16px; }
          header h1 { margin:0; font-size:19px; font-weight:600; }
          header .chain { color:#b8c4d0; font-size:14px; }
          #live { margin-left:auto; font-size:13px; color:#b8c4d0; }
          #live.ok::before { content:"\25CF "; color:#3ddc97; }
          #live.down::before { content:"\25CF "; color:#ff6b6b; }
          main { max-width:1080px; margin:0 auto; padding:20px 24px 40px; }
          .grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(160px, 1fr)); gap:12px; }
          .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
          .card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
          .card .value { font-size:20px; font-weight:600; margin-top:2px; overflow-wrap:anywhere; }
          .card .value.small { font-size:14px; font-family:ui-monospace, Menlo, Consolas, monospace; }
          h2 { font-size:16px; margin:26px 0 10px; }
          table { width:100%; border-collapse:collapse; background:var(--card); border:1px solid var(--line);
                  border-radius:8px; overflow:hidden; }
          th, td { text-align:left; padding:8px 12px; border-bottom:1px solid var(--line); }
          th { font-size:12px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; background:#fafbfc; }
          td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
          td.hash { font-family:ui-monospace, Menlo, Consolas, monospace; }
          tr:last-child td { border-bottom:none; }
          .ok { color:var(--accent); }
          .bad { color:#c0392b; }
          footer { color:var(--muted); font-size:12px; margin-top:24px; }
          code { font-family:ui-monospace, Menlo, Consolas, monospace; }
        </style>
        </head>
        <body>
        <header>
          <h1>Amarscity explorer</h1>
          <span class="chain" id="chain">connecting…</span>
          <span id="live">waiting</span>
        </header>
        <main>
          <div class="grid">
            <div class="card"><div class="label">Height</div><div class="value" id="height">–</div></div>
            <div class="card"><div class="label">Epoch</div><div class="value" id="epoch">–</div></div>
            <div class="card"><div class="label">Next base fee / unit</div>
              <div class="value" id="basefee">–</div></div>
            <div class="card"><div class="label">Pending txs</div><div class="value" id="pending">–</div></div>
            <div class="card"><div class="label">Accounts</div><div class="value" id="accounts">–</div></div>
          </div>
          <div class="grid" style="margin-top:12px">
            <div class="card"><div class="label">Head hash</div><div class="value small" id="hash">–</div></div>
          </div>

          <h2>Consensus <span class="chain" id="mode"></span></h2>
          <div class="grid">
            <div class="card"><div class="label">Committee epoch</div><div class="value" id="cEpoch">–</div></div>
            <div class="card"><div class="label">Height / round / step</div>
              <div class="value" id="round">–</div></div>
            <div class="card"><div class="label">Head finality</div><div class="value" id="finality">–</div></div>
            <div class="card"><div class="label">Peers connected</div><div class="value" id="peers">–</div></div>
          </div>
          <table style="margin-top:12px">
            <thead><tr><th class="num">#</th><th>Member key</th><th class="num">Weight</th><th>Peer</th></tr></thead>
            <tbody id="members"><tr><td colspan="4">loading…</td></tr></tbody>
          </table>

          <h2>Supply (AMSC)</h2>
          <div class="grid">
            <div class="card"><div class="label">Total</div><div class="value" id="total">–</div></div>
            <div class="card"><div class="label">Burned</div><div class="value" id="burned">–</div></div>
            <div class="card"><div class="label">In accounts</div><div class="value" id="inAccounts">–</div></div>
            <div class="card"><div class="label">Conserved</div><div class="value" id="conserved">–</div></div>
          </div>

          <h2>Epoch / delegate pool</h2>
          <div class="grid">
            <div class="card"><div class="label">Epoch length</div><div class="value" id="epochLength">–</div></div>
            <div class="card"><div class="label">Latest checkpoint height</div>
              <div class="value" id="checkpoint">–</div></div>
            <div class="card"><div class="label">Candidates</div><div class="value" id="candidateCount">–</div></div>
            <div class="card"><div class="label">Staked AMSC</div><div class="value" id="staked">–</div></div>
          </div>
          <table style="margin-top:12px">
            <thead><tr><th class="num">#</th><th>Candidate</th><th>Owner</th><th class="num">Weight</th>
              <th class="num">Reward share</th><th>Pool of epoch <span id="poolEpoch">–</span></th></tr></thead>
            <tbody id="candidates"><tr><td colspan="6">loading…</td></tr></tbody>
          </table>

          <h2>Recent blocks</h2>
          <table>
            <thead><tr><th class="num">Height</th><th>Hash</th><th class="num">Txs</th><th class="num">Units</th>
              <th>Time</th></tr></thead>
            <tbody id="blocks"><tr><td colspan="5">loading…</td></tr></tbody>
          </table>
          <footer>Polls <code>/v1/head</code>, <code>/v1/supply</code>, <code>/v1/blocks</code>,
            <code>/v1/staking</code>, <code>/v1/candidates</code> and <code>/v1/consensus</code> every second.
            Amounts in the API are strings of base units (1 AMSC = 1,000,000 units).</footer>
        </main>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        const set = (id, text) => { $(id).textContent = text; };
        // Amounts arrive as decimal strings of base units; BigInt keeps every digit.
        function amsc(units) {
          const v = BigInt(units), whole = v / 1000000n, frac = v % 1000000n;
          const grouped = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
          return frac === 0n ? grouped : grouped + "." + frac.toString().padStart(6, "0").replace(/0+$/, "");
        }
        function ago(ms) {
          const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
          if (s < 60) return s + " s ago";
          if (s < 3600) return Math.floor(s / 60) + " min ago";
          return new Date(ms).toLocaleString();
        }
        async function get(path) {
          const r = await fetch(path, { cache: "no-store" });
          if (!r.ok) throw new Error(path + ": HTTP " + r.status);
          return r.json();
        }
        function rows(id, items, cellsOf) {
          const body = document.createElement("tbody");
          body.id = id;
          for (const item of items) {
            const tr = document.createElement("tr");
            for (const [text, cls] of cellsOf(item)) {
              const td = document.createElement("td");
              td.textContent = text;
              if (cls) td.className = cls;
              tr.appendChild(td);
            }
            body.appendChild(tr);
          }
          $(id).replaceWith(body);
        }
        async function refresh() {
          try {
            const [head, supply, list, staking, cands, cons] =
              await Promise.all([get("/v1/head"), get("/v1/supply"), get("/v1/blocks?limit=15"),
                                 get("/v1/staking"), get("/v1/candidates"), get("/v1/consensus")]);
            // Weights are decimal strings (they may exceed 2^53): BigInt for the ratio, in tenths of a percent.
            const fin = cons.finality, total = BigInt(fin.totalWeight);
            const share = total === 0n ? "" : " (" + (Number(BigInt(fin.signedWeight) * 1000n / total) / 10) + " %)";
            set("mode", cons.mode === "dev" ? "· dev mode (single node)" : "· committee node");
            set("cEpoch", cons.epoch);
            set("round", cons.core ? cons.core.height + " / " + cons.core.round + " / " + cons.core.step
                : "– (dev mode)");
            set("finality", (fin.final ? "final" : "NOT FINAL") + share);
            $("finality").className = "value " + (fin.final ? "ok" : "bad");
            set("peers", cons.peers ? cons.peers.connected : "–");
            rows("members", cons.committee.members, (m) => [[m.index, "num"],
              [m.key.slice(0, 16) + "…" + (m.self ? " (this node)" : ""), "hash"], [m.weight, "num"],
              [m.self ? "self" : (m.connected === null ? "–" : (m.connected ? "connected" : "not connected")), ""]]);
            set("epochLength", staking.epochLength + " blocks");
            set("checkpoint", staking.latestCheckpoint ? staking.latestCheckpoint.height.toLocaleString() +
                " (epoch " + staking.latestCheckpoint.epoch + ")" : "none yet");
            set("candidateCount", staking.candidates.toLocaleString());
            set("staked", amsc(staking.staked));
            set("poolEpoch", cands.poolEpoch);
            let rank = 0;
            rows("candidates", cands.candidates.slice(0, 50), (c) => [[++rank, "num"], [c.name, ""],
              [c.owner.slice(0, 16) + "…", "hash"], [amsc(c.totalWeight), "num"],
              [(c.rewardShareBps / 100) + " %", "num"], [c.ejected ? "ejected" : (c.inPool ? "elected" : "–"), ""]]);
            set("chain", head.chainName + " · chain " + head.chainID);
            set("height", head.height.toLocaleString());
            set("epoch", head.epoch);
            set("basefee", head.nextBaseFee + " units");
            set("pending", head.pending.toLocaleString());
            set("accounts", head.accounts.toLocaleString());
            set("hash", head.hash);
            set("total", amsc(supply.total));
            set("burned", amsc(supply.burned));
            set("inAccounts", amsc(supply.inAccounts));
            set("conserved", supply.conserved ? "yes" : "NO");
            $("conserved").className = "value " + (supply.conserved ? "ok" : "bad");
            const body = document.createElement("tbody");
            body.id = "blocks";
            for (const b of list.blocks) {
              const tr = document.createElement("tr");
              const cells = [[b.height, "num"], [b.hash.slice(0, 16) + "…", "hash"], [b.transactions, "num"],
                             [b.unitsUsed.toLocaleString(), "num"], [ago(b.timestamp), ""]];
              for (const [text, cls] of cells) {
                const td = document.createElement("td");
                td.textContent = text;
                if (cls) td.className = cls;
                tr.appendChild(td);
              }
              tr.title = b.hash;
              body.appendChild(tr);
            }
            $("blocks").replaceWith(body);
            set("live", "live");
            $("live").className = "ok";
          } catch (e) {
            set("live", "node unreachable");
            $("live").className = "down";
          }
        }
        refresh();
        setInterval(refresh, 1000);
        </script>
        </body>
        </html>
        """#
}
