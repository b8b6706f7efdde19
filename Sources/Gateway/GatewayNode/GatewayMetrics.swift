import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// One node's metrics: recorded with swift-metrics where things happen (a request answered, a block committed,
/// a consensus step left), and exported in the Prometheus text format by swift-prometheus at `GET /metrics`.
///
/// Each node owns its registry rather than bootstrapping the process-wide `MetricsSystem`, so that several
/// nodes in one process (the tests) keep their figures apart. Counters a part already keeps for itself (the
/// peer network's, the MQTT bridge's) are mirrored into swift-metrics by collectors run before each export.
public final class GatewayMetrics: Sendable {
    /// Hand this to swift-metrics' `Counter(label:dimensions:factory:)` and its kin.
    public let factory: any MetricsFactory
    private let registry: PrometheusCollectorRegistry
    private let state = Mutex(State())

    private struct State {
        var collectors: [@Sendable (GatewayMetrics) -> Void] = []
        /// The last total mirrored per series, so a mirror increments a counter by what is new.
        var mirrored: [String: Int64] = [:]
    }

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.factory = HelpfulPrometheusFactory(registry: registry)
    }

    /// Runs `collector` before every export (it reads a part's own counters and mirrors them here).
    public func collect(_ collector: @escaping @Sendable (GatewayMetrics) -> Void) {
        state.withLock { $0.collectors.append(collector) }
    }

    /// The Prometheus text of every metric, after the collectors ran.
    public func export() -> [UInt8] {
        let collectors = state.withLock { $0.collectors }
        for collect in collectors { collect(self) }
        return registry.emitToBuffer()
    }

    // MARK: recording

    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
    }

    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Gauge {
        CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory)
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> CoreMetrics.Timer {
        CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory)
    }

    /// A counter per key (a status code, a resource and code), its labels made once for each key: a request
    /// then costs a dictionary lookup, not a registry lookup by name and labels.
    public func counterFamily<Key: Hashable & Sendable>(
        _ label: String, dimensions: @escaping @Sendable (Key) -> [(String, String)]
    ) -> CounterFamily<Key> {
        CounterFamily(metrics: self, label: label, dimensions: dimensions)
    }

    /// Brings the counter `label` up to `total`, a running total a part keeps itself (a total that went down,
    /// after the part restarted, counts from zero again).
    public func mirror(_ label: String, _ dimensions: [(String, String)] = [], total: Int) {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        let total = Int64(total)
        let delta = state.withLock { s -> Int64 in
            let last = s.mirrored[key] ?? 0
            s.mirrored[key] = total
            return total >= last ? total - last : total
        }
        let c = counter(label, dimensions)
        if delta > 0 { c.increment(by: delta) }
    }

    // MARK: names

    /// Every metric's help text, by name. A name missing here is a bug (``HelpfulPrometheusFactory`` traps on
    /// it in debug builds): promtool refuses metrics without help, and so would an operator.
    static let help: [String: String] = [
        "amars_build_info": "The running build: version and git commit in labels, value 1.",
        "amars_head_height": "Height of the last finalized block.",
        "amars_head_timestamp_seconds": "Timestamp of the last finalized block, seconds since the Unix epoch.",
        "amars_base_fee": "Base fee per unit of the next block.",
        "amars_mempool_transactions": "Transactions waiting in the mempool.",
        "amars_accounts": "Accounts with a non-empty state.",
        "amars_block_commit_duration_seconds": "Time to execute, store and commit one block.",
        "amars_http_requests_total": "HTTP requests answered, by status code.",
        "amars_http_connections": "HTTP connections open.",
        "amars_http_connections_evicted_total": "Idle HTTP connections closed to admit a new one at a cap.",
        "amars_http_connections_refused_total": "New HTTP connections refused: every connection was busy.",
        "amars_http_requests_timed_out_total": "HTTP connections closed for a request head or body too slow.",
        "amars_coap_requests_total": "CoAP requests answered, by resource and response code.",
        "amars_mqtt_connected": "1 while the MQTT bridge is connected and subscribed, else 0.",
        "amars_mqtt_connects_total": "Connections of the MQTT bridge to its broker (the first and every reconnect).",
        "amars_mqtt_submits_accepted_total": "Device submits over MQTT the chain admitted.",
        "amars_mqtt_submits_refused_total": "Device submits over MQTT the chain refused, by refusal code.",
        "amars_mqtt_messages_dropped_total": "MQTT messages the bridge dropped before the chain saw them, by reason.",
        "amars_mqtt_receipts_published_total": "Final receipts the MQTT bridge published to devices.",
        "amars_mqtt_publishes_unacknowledged": "MQTT bridge messages (QoS 1) the broker has not acknowledged yet.",
        "amars_consensus_height": "Height the consensus core is deciding.",
        "amars_consensus_round": "Round of that height the consensus core is in.",
        "amars_consensus_step_duration_seconds": "Time spent in each consensus step (propose, prepare, commit).",
        "amars_consensus_messages_dropped_total": "Consensus messages the core refused, by reason.",
        "amars_peers_connected": "Committee peers with an authenticated connection.",
        "amars_peer_bans_total": "Peers banned for misbehaviour.",
        "amars_peer_disconnects_total": "Peer connections closed, by reason.",
        "amars_peer_frames_dropped_total": "Peer frames not delivered or not sent, by reason.",
        "amars_peer_handshakes_total": "Peer handshakes completed.",
    ]
}

/// See ``GatewayMetrics/counterFamily(_:dimensions:)``.
public final class CounterFamily<Key: Hashable & Sendable>: Sendable {
    private let metrics: GatewayMetrics
    private let label: String
    private let dimensions: @Sendable (Key) -> [(String, String)]
    private let counters = Mutex<[Key: CoreMetrics.Counter]>([:])

    init(metrics: GatewayMetrics, label: String, dimensions: @escaping @Sendable (Key) -> [(String, String)]) {
        self.metrics = metrics
        self.label = label
        self.dimensions = dimensions
    }

    public func increment(_ key: Key) {
        let counter = counters.withLock { counters in
            if let c = counters[key] { return c }
            let c = metrics.counter(label, dimensions(key))
            counters[key] = c
            return c
        }
        counter.increment()
    }
}

/// swift-prometheus's own factory registers every metric without help text; this one gives each its help
/// from ``GatewayMetrics/help``.
struct HelpfulPrometheusFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        let help = GatewayMetrics.help[label]
        assert(help != nil, "metric \(label) has no help text in GatewayMetrics.help")
        return MetricNameDescriptor(metricName: label, unitName: "", helpText: help ?? label)
    }

    /// Seconds, from a millisecond to a minute: block commits and consensus steps.
    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60),
    ]

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions, buckets: Self.durationBuckets)
    }

    // A node's metrics live as long as the node.
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyMeter(_ handler: any MeterHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}

extension CoreMetrics.Timer {
    /// Records the time from `start` to `now` on a continuous clock.
    func recordInterval(since start: ContinuousClock.Instant, now: ContinuousClock.Instant) {
        let elapsed = now - start
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
