/// The explorer served at `GET /` and at one path per object (`/block/12`, `/tx/…`, `/account/amsc1…`,
/// `/candidate/amsc1…`, `/epoch/3`, `/escrow/…`, `/search?q=…`, `/request?to=…`): one self-contained page (inline
/// CSS and JavaScript, no external assets, so it works on a gateway with no internet access) that reads its own
/// path and renders that object from the JSON API.
///
/// Live: the page holds one `GET /v1/events` stream (server-sent events; on an account page it also carries that
/// account's receipts) and redraws on each new head, instead of polling.
///
/// Everything shown comes from the public API, so the page is also a living example of how to use it. Values
/// are inserted with `textContent`, never as HTML, so nothing from the chain can inject markup. A transaction's
/// inclusion proof is checked in the page itself with the browser's SHA-256 (Web Crypto, offered on https and
/// on localhost): the id's Merkle path must end at the transactions root inside the block header, and that
/// header must hash to the block's hash.
enum ExplorerPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
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
          header a { color:#fff; text-decoration:none; }
          header form { margin-left:24px; flex:1; max-width:520px; display:flex; }
          header input { flex:1; padding:6px 10px; border-radius:6px; border:1px solid #44505c; background:#2b3642;
                         color:#fff; font:inherit; font-size:14px; }
          a { color:var(--accent); }
          dl.fields { display:grid; grid-template-columns:max-content 1fr; gap:6px 18px; background:var(--card);
                      border:1px solid var(--line); border-radius:8px; padding:14px; margin:0; }
          dl.fields dt { color:var(--muted); font-size:13px; }
          dl.fields dd { margin:0; overflow-wrap:anywhere; }
          .mono { font-family:ui-monospace, Menlo, Consolas, monospace; font-size:13px; }
          .amount { font-variant-numeric:tabular-nums; }
          .note { color:var(--muted); font-size:13px; }
          #error { display:none; background:#fdecea; color:#8a1f11; border:1px solid #f5c6bf; border-radius:8px;
                   padding:10px 14px; margin-bottom:14px; }
          .qr img { width:264px; height:264px; image-rendering:pixelated; background:#fff; }
          form.request { display:grid; grid-template-columns:max-content 1fr; gap:8px 12px; max-width:640px; }
          form.request input { font:inherit; padding:5px 8px; }
          .pill { display:inline-block; padding:0 8px; border-radius:10px; font-size:12px; background:#e8f5ef; }
          .pill.bad { background:#fdecea; }
        </style>
        </head>
        <body>
        <header>
          <h1><a href="/">Amarscity explorer</a></h1>
          <span class="chain" id="chain">connecting…</span>
          <form id="search" action="/search"><input name="q" id="q" autocomplete="off"
            placeholder="height, block hash, transaction id, escrow id, epoch N or amsc1… address"></form>
          <span id="live">waiting</span>
        </header>
        <main>
          <div id="error"></div>
          <div id="view">loading…</div>
          <footer>Data from this gateway's JSON API (<code>/v1/…</code>); new blocks arrive by server-sent events on
            <code>/v1/events</code>. Amounts in AMSC (1 AMSC = 1,000,000 base units; hover an amount for units).</footer>
        </main>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        // ---- formatting -------------------------------------------------------------------------------------
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
        const short = (h) => h.length > 20 ? h.slice(0, 10) + "…" + h.slice(-6) : h;
        // ---- DOM building (text only, never HTML from data) ------------------------------------------------
        function el(tag, attrs, ...children) {
          const e = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) {
            if (v === undefined || v === null) continue;
            if (k === "class") e.className = v; else e.setAttribute(k, v);
          }
          for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
          return e;
        }
        const link = (href, text, cls) => el("a", { href, class: cls }, text);
        const money = (units) => el("span", { class: "amount", title: units + " units", "data-units": units },
                                     amsc(units) + " AMSC");
        // A committee's weights are stake (base units) once elected; the genesis validators' are plain votes.
        const weight = (w, committee) => committee.genesisWeights ? el("span", { title: "genesis voting weight" }, w + " (genesis)") : money(w);
        const addr = (a) => a ? link("/account/" + a, short(a), "mono") : "–";
        const txLink = (id) => link("/tx/" + id, short(id), "mono");
        const blockLink = (h) => link("/block/" + h, "#" + Number(h).toLocaleString());
        function fields(pairs) {
          const dl = el("dl", { class: "fields" });
          for (const [k, v, id] of pairs) dl.append(el("dt", {}, k), el("dd", { id }, v));
          return dl;
        }
        function table(headers, rows, id) {
          const t = el("table", { id });
          t.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))));
          const body = el("tbody");
          for (const r of rows) body.append(el("tr", {}, ...r.map((c) => el("td", {}, c))));
          if (!rows.length) body.append(el("tr", {}, el("td", { colspan: headers.length, class: "note" }, "none")));
          t.append(body);
          return t;
        }
        function show(...children) {
          const v = $("view");
          v.replaceChildren(...children);
          v.dataset.ready = "1";
        }
        function fail(message) {
          $("error").textContent = message;
          $("error").style.display = "block";
          $("view").replaceChildren();
          $("view").dataset.ready = "1";
        }
        async function get(path) {
          const r = await fetch(path, { cache: "no-store" });
          const body = await r.json().catch(() => ({}));
          if (!r.ok) throw new Error(body.error ? body.error.message : path + ": HTTP " + r.status);
          return body;
        }
        // ---- hashing, for the inclusion proof ---------------------------------------------------------------
        const hexToBytes = (h) => new Uint8Array(h.match(/../g).map((b) => parseInt(b, 16)));
        const bytesToHex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
        async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
        // BIP340-style tagged hash: SHA256(SHA256(tag) || SHA256(tag) || data), as the chain uses.
        async function tagged(tag, ...parts) {
          const t = await sha256(new TextEncoder().encode(tag));
          const total = parts.reduce((n, p) => n + p.length, 64);
          const buf = new Uint8Array(total);
          buf.set(t, 0); buf.set(t, 32);
          let o = 64;
          for (const p of parts) { buf.set(p, o); o += p.length; }
          return sha256(buf);
        }
        // Field `n` of an encoded block header, as hex, walking its layout (BlockHeader.encode): version byte,
        // chain id, height, previous hash, timestamp, epoch, round, proposer, base fee, units used, transactions
        // root, … — varints (LEB128) and 32-byte hashes.
        function headerField(bytes, n) {
          const layout = ["u8", "v", "v", "h", "v", "v", "v", "h", "v", "v", "h", "h", "h"];
          let o = 0;
          for (let i = 0; i < n; i++) {
            if (layout[i] === "u8") o += 1;
            else if (layout[i] === "h") o += 32;
            else { while (o < bytes.length && bytes[o] & 0x80) o++; o++; }
          }
          return o + 32 <= bytes.length ? bytesToHex(bytes.slice(o, o + 32)) : null;
        }
        // The chain's list Merkle tree (RFC 6962 shape): an unpaired last node is carried up without a sibling.
        async function checkInclusion(tx) {
          if (!window.crypto || !crypto.subtle) return [false, "not checked: this browser offers SHA-256 only on https or localhost"];
          let h = await tagged("AmarsMerkleLeaf", hexToBytes(tx.id));
          let i = BigInt(tx.proof.index), m = BigInt(tx.proof.count), k = 0;
          const sib = tx.proof.siblings.map(hexToBytes);
          while (m > 1n) {
            if (i & 1n) { if (k >= sib.length) return [false, "the proof is too short"]; h = await tagged("AmarsMerkleNode", sib[k++], h); }
            else if (i + 1n < m) { if (k >= sib.length) return [false, "the proof is too short"]; h = await tagged("AmarsMerkleNode", h, sib[k++]); }
            i >>= 1n; m = (m + 1n) / 2n;
          }
          if (k !== sib.length) return [false, "the proof has extra siblings"];
          if (bytesToHex(h) !== tx.block.transactionsRoot) return [false, "the path does not end at the block's transactions root"];
          if (headerField(hexToBytes(tx.block.header), 10) !== tx.block.transactionsRoot) return [false, "the header does not hold that root"];
          const headerHash = bytesToHex(await tagged("AmarsHeader", hexToBytes(tx.block.header)));
          if (headerHash !== tx.block.hash) return [false, "the header does not hash to the block's hash"];
          return [true, "checked in this page: the id's Merkle path (" + sib.length + " siblings) ends at the " +
                  "transactions root of block " + tx.block.height + ", whose header hashes to " + short(tx.block.hash)];
        }
        // ---- live updates -------------------------------------------------------------------------------------
        const live = { head: null, onHead: [], onReceipt: [] };
        function connect(account) {
          const q = new URLSearchParams();
          if (account) q.set("account", account);
          if (live.lastID) q.set("after", live.lastID);
          const es = new EventSource("/v1/events" + (q.toString() ? "?" + q : ""));
          es.addEventListener("head", (e) => {
            const head = JSON.parse(e.data);
            live.head = head;
            live.lastID = e.lastEventId;
            $("chain").textContent = head.chainName + " · chain " + head.chainID + " · height " +
              head.height.toLocaleString();
            $("live").textContent = "live";
            $("live").className = "ok";
            for (const f of live.onHead) f(head);
          });
          es.addEventListener("receipt", (e) => { const r = JSON.parse(e.data); for (const f of live.onReceipt) f(r); });
          es.onerror = () => {
            $("live").textContent = "reconnecting";
            $("live").className = "down";
            // The browser retries by itself after a dropped stream, but gives up after an answer other than 200
            // (a gateway with all its streams taken answers 503): then start again in a while, from the last head.
            if (es.readyState === EventSource.CLOSED) setTimeout(() => connect(account), 5000);
          };
        }
        // ---- pages --------------------------------------------------------------------------------------------
        async function home() {
          async function draw() {
            const [head, supply, list, staking, cands, cons] =
              await Promise.all([get("/v1/head"), get("/v1/supply"), get("/v1/blocks?limit=15"),
                                 get("/v1/staking"), get("/v1/candidates"), get("/v1/consensus")]);
            const fin = cons.finality, total = BigInt(fin.totalWeight);
            const share = total === 0n ? "" : " (" + (Number(BigInt(fin.signedWeight) * 1000n / total) / 10) + " %)";
            const transferFee = (BigInt(head.fees.transferUnits) * (BigInt(head.nextBaseFee) + 1n)).toString();
            const names = new Map(cands.candidates.map((c) => [c.operatorKey, c.name]));
            show(
              el("div", { class: "grid" },
                card("Height", head.height.toLocaleString(), "height"), card("Epoch", link("/epoch/" + head.epoch, head.epoch)),
                card("Next base fee / unit", money(head.nextBaseFee), "basefee"),
                card("A transfer costs now", money(transferFee), "transferFee"),
                card("Pending txs", head.pending.toLocaleString(), "pending"), card("Accounts", head.accounts.toLocaleString())),
              el("div", { class: "grid", style: "margin-top:12px" }, card("Head hash", link("/block/" + head.height, head.hash, "mono"))),
              el("h2", {}, "Consensus ", el("span", { class: "chain" }, cons.mode === "dev" ? "· dev mode (single node)" : "· committee node")),
              el("div", { class: "grid" },
                card("Committee epoch", link("/epoch/" + cons.epoch, cons.epoch)),
                card("Height / round / step", cons.core ? cons.core.height + " / " + cons.core.round + " / " + cons.core.step : "– (dev mode)"),
                card("Head finality", el("span", { class: fin.final ? "ok" : "bad" }, (fin.final ? "final" : "NOT FINAL") + share), "finality"),
                card("Peers connected", cons.peers ? cons.peers.connected : "–")),
              table(["#", "Member", "Weight", "Peer"], cons.committee.members.map((m) => [m.index,
                el("span", {}, names.get(m.key) ? names.get(m.key) + " " : "", addr(m.address), m.self ? " (this node)" : ""),
                weight(m.weight, cons.committee), m.self ? "self" : (m.connected === null ? "–" : (m.connected ? "connected" : "not connected"))]), "members"),
              el("h2", {}, "Supply"),
              el("div", { class: "grid" }, card("Total", money(supply.total), "total"), card("Burned", money(supply.burned)),
                card("In accounts", money(supply.inAccounts)), card("Staked", money(supply.staked)),
                card("Conserved", el("span", { class: supply.conserved ? "ok" : "bad" }, supply.conserved ? "yes" : "NO"), "conserved")),
              el("h2", {}, "Delegate pool of epoch ", link("/epoch/" + cands.poolEpoch, cands.poolEpoch)),
              table(["#", "Candidate", "Owner", "Weight", "Reward share", "Pool"], cands.candidates.slice(0, 50).map((c, i) =>
                [i + 1, link("/candidate/" + c.owner, c.name), addr(c.owner), money(c.totalWeight), (c.rewardShareBps / 100) + " %",
                 c.ejected ? "ejected" : (c.inPool ? "elected" : "–")]), "candidates"),
              el("h2", {}, "Recent blocks"),
              table(["Height", "Hash", "Txs", "Units", "Time"], list.blocks.map((b) =>
                [blockLink(b.height), link("/block/" + b.height, short(b.hash), "mono"), b.transactions,
                 b.unitsUsed.toLocaleString(), ago(b.timestamp)]), "blocks"));
          }
          await draw();
          live.onHead.push(() => draw().catch(() => {}));
        }
        function card(label, value, id) {
          return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value", id }, value));
        }
        async function signerNames(epoch) {
          const [committee, cands] = await Promise.all([get("/v1/committee?epoch=" + epoch).catch(() => null), get("/v1/candidates")]);
          const names = new Map(cands.candidates.map((c) => [c.operatorKey, c.name]));
          return (index) => {
            const m = committee && committee.members[index];
            if (!m) return "member " + index;
            return names.get(m.key) || short(m.address);
          };
        }
        async function blockPage(id) {
          const b = await get("/v1/blocks/" + encodeURIComponent(id));
          const h = b.header, nameOf = await signerNames(h.epoch);
          const receipts = new Map(b.receipts.map((r) => [r.id, r]));
          document.title = "Block " + b.height + " · Amarscity";
          show(
            el("h2", {}, "Block #" + b.height.toLocaleString(), " ",
              b.height > 0 ? link("/block/" + (b.height - 1), "← previous") : "", " ", link("/block/" + (b.height + 1), "next →")),
            fields([["Hash", el("span", { class: "mono" }, b.hash), "blockHash"], ["Time", new Date(h.timestamp).toLocaleString() + " (" + ago(h.timestamp) + ")"],
              ["Epoch", link("/epoch/" + h.epoch, h.epoch)], ["Round", h.round],
              ["Previous", b.height > 0 ? link("/block/" + (b.height - 1), h.previousHash, "mono") : h.previousHash],
              ["Proposer", el("span", { class: "mono" }, h.proposer)], ["Base fee / unit", money(h.baseFee)],
              ["Units used", h.unitsUsed.toLocaleString()], ["Transactions root", el("span", { class: "mono" }, h.transactionsRoot)],
              ["State root", el("span", { class: "mono" }, h.stateRoot)], ["Receipts root", el("span", { class: "mono" }, h.receiptsRoot)]]),
            el("h2", {}, "Transactions (" + b.transactions.length + ")"),
            table(["Id", "Kind", "From", "To", "Amount", "Fee paid", "Status"], b.transactions.map((t) => {
              const r = receipts.get(t.id);
              return [txLink(t.id), t.kind, addr(t.sender), t.to ? addr(t.to) : "–", t.amount ? money(t.amount) : "–",
                      r ? money(r.feePaid) : "–", r ? el("span", { class: "pill" + (r.status === "success" ? "" : " bad") }, r.status) : "–"];
            }), "transactions"),
            el("h2", {}, "Commit certificate (round " + b.certificate.round + ")"),
            table(["Member", "Signer", "Signature"], b.certificate.signatures.map((s) =>
              [s.member, nameOf(s.member), el("span", { class: "mono" }, short(s.signature))]), "signers"));
        }
        async function txPage(id) {
          const t = await get("/v1/tx/" + encodeURIComponent(id));
          document.title = "Transaction " + short(t.id) + " · Amarscity";
          if (t.status !== "included") {
            show(el("h2", {}, "Transaction"), fields([["Id", el("span", { class: "mono" }, t.id)], ["Status", t.status, "txStatus"],
              ["", t.status === "pending" ? "waiting for a block; this page updates when it is final" : (t.code || "")]]));
            live.onHead.push(() => { if (t.status === "pending") get("/v1/tx/" + t.id).then((n) => { if (n.status !== "pending") { live.onHead.length = 0; txPage(id).catch((e) => fail(e.message)); } }); });
            return;
          }
          const x = t.transaction, r = t.receipt;
          const fee = BigInt(r.feePaid);
          show(
            el("h2", {}, "Transaction ", el("span", { class: "mono" }, short(t.id))),
            fields([["Id", el("span", { class: "mono" }, t.id)],
              ["Status", el("span", { class: "pill" + (r.status === "success" ? "" : " bad") }, "final · " + r.status), "txStatus"],
              ["Block", el("span", {}, blockLink(t.height), " position " + t.position + " · " + ago(t.timestamp))],
              ["Kind", x.kind], ["From", addr(x.sender)], ["Nonce", x.nonce],
              ["To", x.to ? addr(x.to) : "–"], ["Amount", x.amount ? money(x.amount) : "–", "txAmount"],
              ["Memo", x.memo ? new TextDecoder().decode(hexToBytes(x.memo)) : "–"],
              ["Fee paid", el("span", {}, money(r.feePaid), " (" + r.unitsUsed.toLocaleString() + " units × " +
                (r.unitsUsed ? (fee / BigInt(r.unitsUsed)).toString() : "0") + ")"), "feePaid"],
              ["Fee cap agreed", el("span", {}, money((BigInt(x.maxFeePerUnit) * BigInt(r.unitsUsed)).toString()),
                " (" + x.maxFeePerUnit + " per unit, tip " + x.tipPerUnit + ")")],
              ["Inclusion proof", el("span", { id: "proof" }, "checking…")]]));
          const [ok, why] = await checkInclusion(t);
          $("proof").replaceChildren(el("span", { class: ok ? "ok" : "bad" }, (ok ? "✓ " : "✗ ") + why));
          $("proof").dataset.verified = ok ? "yes" : "no";
        }
        async function accountPage(a) {
          const [acct, cands] = await Promise.all([get("/v1/accounts/" + encodeURIComponent(a)), get("/v1/candidates")]);
          const cand = cands.candidates.find((c) => c.owner === acct.address);
          document.title = "Account " + short(acct.address) + " · Amarscity";
          const [activity, buckets] = await Promise.all([get("/v1/accounts/" + acct.address + "/transactions?limit=25"),
                                                         get("/v1/buckets?owner=" + acct.address)]);
          const row = (r) => [txLink(r.id), blockLink(r.height), ago(r.timestamp), r.kind,
            r.direction === "in" ? "in" : (r.direction === "out" ? "out" : "self"), addr(r.counterparty),
            r.amount ? money(r.amount) : "–", r.direction === "in" ? "–" : money(r.feePaid), r.memoText || ""];
          const headers = ["Id", "Block", "Time", "Kind", "Dir", "Counterparty", "Amount", "Fee", "Memo"];
          show(
            el("h2", {}, "Account"),
            fields([["Address", el("span", { class: "mono" }, acct.address)], ["Balance", money(acct.balance), "balance"],
              ["Nonce", acct.nonce, "nonce"], ["Pending", acct.pending], ["Candidate", cand ? link("/candidate/" + a, cand.name) : "–"],
              ["Get paid", link("/request?to=" + acct.address, "payment request with QR code")]]),
            el("h2", {}, "Recent transactions"), table(headers, activity.transactions.map(row), "activity"),
            el("h2", {}, "Stake buckets"),
            table(["Id", "Candidate", "Amount", "Weight", "Duration", "Status"], buckets.buckets.map((b) =>
              [b.id, link("/candidate/" + b.candidate, short(b.candidate), "mono"), money(b.amount), money(b.weight),
               b.autoStake ? "auto-stake " + b.durationEpochs + " epochs" : b.durationEpochs + " epochs",
               b.unstakedEpoch !== null ? "unstaked at epoch " + b.unstakedEpoch : "staked"]), "buckets"));
          const seen = new Set(activity.transactions.map((r) => r.id));
          live.onReceipt.push(async (r) => {
            if (seen.has(r.id)) return;
            seen.add(r.id);
            const body = $("activity").tBodies[0];
            if (body.rows.length === 1 && body.rows[0].cells.length === 1) body.replaceChildren();
            // data-head: the last head this page had seen when the receipt arrived (a test checks the delay).
            body.prepend(el("tr", { "data-id": r.id, "data-head": live.head ? live.head.height : "" }, ...row(r).map((c) => el("td", {}, c))));
            const fresh = await get("/v1/accounts/" + acct.address);
            $("balance").replaceChildren(money(fresh.balance));
            $("nonce").textContent = fresh.nonce;
          });
          connect(acct.address);
          return true;
        }
        async function candidatePage(a) {
          const c = await get("/v1/candidates/" + encodeURIComponent(a));
          const voters = await get("/v1/buckets?candidate=" + c.owner);
          const reward = await get("/v1/accounts/" + c.rewardAddress);
          document.title = "Candidate " + c.name + " · Amarscity";
          show(
            el("h2", {}, "Candidate " + c.name),
            fields([["Owner", addr(c.owner)], ["Total weight", money(c.totalWeight), "weight"],
              ["In the pool", c.inPool ? "elected" : (c.ejected ? "ejected for double signing" : "not elected")],
              ["Operator key", el("span", { class: "mono" }, c.operatorKey)],
              ["Rewards go to", el("span", {}, addr(c.rewardAddress), " · balance ", money(reward.balance))],
              ["Reward share to voters", (c.rewardShareBps / 100) + " %"],
              ["Voter rewards this epoch", el("span", {}, money(c.voterRewardsAccrued), " (paid to the voters' buckets at the epoch's end)"), "voterRewards"],
              ["Self-stake bucket", c.selfStakeBucket]]),
            el("h2", {}, "Voters (" + voters.buckets.length + " buckets)"),
            table(["Bucket", "Voter", "Amount", "Weight", "Duration"], voters.buckets.map((b) =>
              [b.id, addr(b.owner), money(b.amount), money(b.weight), b.durationEpochs + " epochs" + (b.autoStake ? " (auto)" : "")]), "voters"));
        }
        async function epochPage(e) {
          const n = Number(e);
          const [pool, committee, cps] = await Promise.all([get("/v1/election/" + n).catch((x) => x),
            get("/v1/committee?epoch=" + n).catch((x) => x), get("/v1/checkpoints?from=" + n + "&limit=1").catch(() => ({ checkpoints: [] }))]);
          const cp = cps.checkpoints.find((c) => c.epoch === n);
          document.title = "Epoch " + n + " · Amarscity";
          const cands = await get("/v1/candidates");
          const names = new Map(cands.candidates.map((c) => [c.operatorKey, c.name]));
          show(
            el("h2", {}, "Epoch " + n + " ", n > 0 ? link("/epoch/" + (n - 1), "← previous") : "", " ", link("/epoch/" + (n + 1), "next →")),
            el("h2", {}, "Committee"),
            committee instanceof Error ? el("p", { class: "note" }, committee.message) : el("div", {},
              el("p", { class: "note" }, committee.source + " · total weight ", weight(committee.totalWeight, committee)),
              table(["#", "Member", "Weight"], committee.members.map((m) =>
                [m.index, el("span", {}, names.get(m.key) ? names.get(m.key) + " " : "", addr(m.address)), weight(m.weight, committee)]), "committee")),
            el("h2", {}, "Delegate pool"),
            pool instanceof Error ? el("p", { class: "note" }, pool.message) :
              table(["Rank", "Candidate", "Weight"], pool.delegates.map((d) =>
                [d.rank, link("/candidate/" + d.candidate, d.name || short(d.candidate)), money(d.weight)]), "pool"),
            el("h2", {}, "Checkpoint"),
            cp ? fields([["Height", blockLink(cp.height)], ["Hash", el("span", { class: "mono" }, cp.hash)],
                         ["Attested by", cp.attesters.length + " pool members"],
                         ["Next committee", cp.nextCommittee.members.length + " members"]])
               : el("p", { class: "note", id: "checkpoint" }, "no checkpoint for epoch " + n + " yet (it is the epoch's last block)"));
        }
        async function escrowPage(id) {
          const e = await get("/v1/escrows/" + encodeURIComponent(id));
          document.title = "Escrow " + short(e.id) + " · Amarscity";
          show(el("h2", {}, "Escrow"), fields([["Opened by", txLink(e.id)], ["Status", e.status, "escrowStatus"],
            ["Renter", addr(e.renter)], ["Device", addr(e.device)], ["Owner", addr(e.owner)], ["Deposit", money(e.deposit)],
            ["Rental fee", money(e.rentalFee)], ["Damages", money(e.damages)], ["Held now", money(e.held)],
            ["Expires at", blockLink(e.expiryHeight)], ["Proven at", blockLink(e.height)]]));
        }
        async function requestPage(params) {
          const form = el("form", { class: "request", id: "requestForm" },
            el("label", { for: "to" }, "Pay to"), el("input", { id: "to", name: "to", value: params.get("to") || "", placeholder: "amsc1…", size: 60 }),
            el("label", { for: "amount" }, "Amount (AMSC)"), el("input", { id: "amount", name: "amount", value: params.get("amount") || "", placeholder: "optional, e.g. 2.5" }),
            el("label", { for: "memo" }, "Memo"), el("input", { id: "memo", name: "memo", value: params.get("memo") || "", maxlength: 64, placeholder: "optional, public on chain" }),
            el("span"), el("button", { type: "submit" }, "Make request"));
          const out = el("div", { id: "requestOut" });
          show(el("h2", {}, "Payment request"), form, out);
          async function render(p) {
            if (!p.get("to")) { out.replaceChildren(el("p", { class: "note" }, "enter the address to be paid")); return; }
            const q = new URLSearchParams();
            for (const k of ["to", "amount", "memo"]) if (p.get(k)) q.set(k, p.get(k));
            try {
              const r = await get("/v1/request?" + q);
              const img = el("img", { src: "/v1/request.svg?" + q, alt: "QR code for " + r.uri, id: "qr" });
              out.replaceChildren(fields([["URI", el("span", { class: "mono", id: "uri" }, r.uri)],
                ["Amount", r.amount ? money(r.amount) : "payer chooses"], ["Pay with", el("code", {}, "amars transfer --key F --request '" + r.uri + "'")]]),
                el("div", { class: "qr" }, img));
              await img.decode().catch(() => {});
              out.dataset.ready = "1";
            } catch (e) { out.replaceChildren(el("p", { class: "bad", id: "requestError" }, e.message)); out.dataset.ready = "1"; }
          }
          form.addEventListener("submit", (ev) => {
            ev.preventDefault();
            const p = new URLSearchParams(new FormData(form));
            history.replaceState(null, "", "/request?" + p);
            render(p);
          });
          await render(params);
        }
        async function searchPage(q) {
          if (!q) return show(el("p", { class: "note" }, "type a height, a hash, an id, 'epoch N' or an address above"));
          const r = await get("/v1/search?q=" + encodeURIComponent(q));
          location.replace(r.path);
        }
        async function route() {
          const params = new URLSearchParams(location.search);
          let streams = false;
          try {
            const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
            if (parts.length === 0) await home();
            else if (parts[0] === "block" && parts.length === 2) await blockPage(parts[1]);
            else if (parts[0] === "tx" && parts.length === 2) await txPage(parts[1]);
            else if (parts[0] === "account" && parts.length === 2) streams = await accountPage(parts[1]);
            else if (parts[0] === "candidate" && parts.length === 2) await candidatePage(parts[1]);
            else if (parts[0] === "epoch" && parts.length === 2) await epochPage(parts[1]);
            else if (parts[0] === "escrow" && parts.length === 2) await escrowPage(parts[1]);
            else if (parts[0] === "request") await requestPage(params);
            else if (parts[0] === "search") await searchPage(params.get("q"));
            else fail("no such page: " + location.pathname);
          } catch (e) {
            fail(e.message);
          }
          if (!streams && !live.connected) { live.connected = true; connect(null); }
        }
        $("search").addEventListener("submit", async (ev) => {
          ev.preventDefault();
          const q = $("q").value.trim();
          if (!q) return;
          try { location.assign((await get("/v1/search?q=" + encodeURIComponent(q))).path); }
          catch (e) { $("error").textContent = e.message; $("error").style.display = "block"; }
        });
        route();
        </script>
        </body>
        </html>
        """#
}
