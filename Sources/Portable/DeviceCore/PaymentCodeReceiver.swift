import AmarsCodec
import AmarsCrypto
import Ledger
import LightClient
import PaymentCodes

/// Payment-code receiving for a device, written once for the firmware, `amars device` and the simulator: the
/// operations to run on a ``DeviceSession``, and what their proven outcomes mean (SPEC "Payment codes").
///
/// A round runs in four phases. First the head is verified: it fixes the last finished epoch the round tests.
/// Then every new notification to the device's notification address is proven and unmasked (one that unmasks
/// to garbage is skipped: sent to someone else, or forged); they are read after the head, so every payer who
/// paid in an epoch the round tests is known before its filter is (a payer notifies before it pays). Then, epoch by
/// finished epoch, the one-time addresses in each payer's look-ahead window are tested against the epoch's
/// committed recipient filter: only the epoch is asked for, never an address. Last, each matched address's
/// account is proven; a non-empty one is a payment and moves that payer's window past it. The cursors
/// (``State``) are all a device saves to go on after a power cycle.
public struct PaymentCodeReceiver: Sendable {
    /// One-time addresses watched per payer past the last one paid.
    public static let window: UInt32 = 4
    /// Most payers a device keeps (its saved state is bounded).
    public static let maxPayers = 8

    /// What survives a power cycle.
    public struct State: Equatable, Sendable, CanonicalCodable {
        public struct Payer: Equatable, Sendable {
            public var code: PaymentCode
            /// The first index not yet seen paid.
            public var nextIndex: UInt32
        }

        /// The first notification record still to read.
        public var notificationIndex: UInt64 = 0
        /// The first epoch whose filter is still to test.
        public var nextEpoch: UInt64 = 0
        public var payers: [Payer] = []

        public init() {}

        public func encode(to w: inout ByteWriter) {
            w.writeVarint(notificationIndex)
            w.writeVarint(nextEpoch)
            w.writeVarint(UInt64(payers.count))
            for payer in payers {
                w.write(payer.code.binary)
                w.writeVarint(UInt64(payer.nextIndex))
            }
        }

        public init(from r: inout ByteReader) throws(CodecError) {
            notificationIndex = try r.readVarint()
            nextEpoch = try r.readVarint()
            let count = try r.readCount(cap: PaymentCodeReceiver.maxPayers)
            for _ in 0..<count {
                let binary = try r.readBytes(PaymentCode.binaryLength)
                guard let code = try? PaymentCode(binary: binary) else { throw .invalidValue(.range) }
                payers.append(Payer(code: code, nextIndex: try r.readVarint32()))
            }
        }
    }

    /// A payment found: a one-time account of this device with a proven balance.
    public struct Payment: Equatable, Sendable {
        public let address: Address
        /// Which payer (index into ``State/payers``) and which of its one-time indices.
        public let payer: Int
        public let index: UInt32
        public let epoch: UInt64
        public let account: VerifiedAccount
    }

    /// What the driver learns from one step, besides payments.
    public enum Event: Equatable, Sendable {
        case payerAdded(Address)
        /// A notification to this device that did not unmask to a payment code.
        case notificationSkipped(index: UInt64, PaymentCodeFault)
        /// Already known payer, notified again.
        case payerKnown(Address)
        /// More payers than a device keeps: the notification was not kept.
        case payersFull(Address)
        case epochTested(epoch: UInt64, matches: Int, filterBytes: Int)
        case payment(Payment)
        /// A filter match whose account is empty: a false positive, or a payment not yet made.
        case emptyMatch(Address)
    }

    public let keys: PaymentCodeKeys
    public private(set) var state: State
    private let notificationKey: PrivateKey
    private var phase: Phase = .head
    /// The last epoch whose filter exists when this round started (from the verified head).
    private var lastFinishedEpoch: UInt64?
    private var watched: [(payer: Int, index: UInt32, address: Address)] = []
    /// Whether a payment or a new payer moved the windows since `watched` was derived: they are derived again
    /// only then, not for every epoch (a derivation costs a board about four signature verifies).
    private var windowsMoved = true
    /// One-time keys derived so far: each window once, however many epochs it is tested against.
    public private(set) var keysDerived = 0
    private var matched: [(payer: Int, index: UInt32, address: Address)] = []
    /// Whether the matches of the epoch being proven held a payment (its windows moved: test the epoch again).
    private var paidInEpoch = false
    private var epochLength: UInt64

    private enum Phase: Sendable {
        case notifications, head, filters, accounts(epoch: UInt64), done
    }

    public init(keys: PaymentCodeKeys, state: State = State(), epochLength: UInt64) throws(PaymentCodeError) {
        self.keys = keys
        self.state = state
        self.notificationKey = try keys.key(at: 0)
        self.epochLength = max(epochLength, 1)
    }

    public var code: PaymentCode { keys.code }

    /// The next operation to run, or nil when the round is over (everything up to the verified head is seen).
    public mutating func next() -> DeviceOperation? {
        switch phase {
        case .notifications:
            return .notification(code.notificationAddress, index: state.notificationIndex)
        case .head:
            return .head
        case .filters:
            guard let last = lastFinishedEpoch, state.nextEpoch <= last, !state.payers.isEmpty else {
                phase = .done
                return nil
            }
            if windowsMoved {
                watched = watchedAddresses()
                windowsMoved = false
                keysDerived += watched.count
            }
            return .recipientFilter(epoch: state.nextEpoch, watching: watched.map { $0.address })
        case .accounts:
            guard let first = matched.first else { return nil }
            return .account(first.address)
        case .done:
            return nil
        }
    }

    /// Starts another round from the cursors it reached: a device waiting to be paid asks again after a pause.
    public mutating func newRound() {
        phase = .head
        matched = []
    }

    /// The outcome of the operation ``next()`` gave. Throws only for an outcome of another operation.
    public mutating func handle(_ outcome: DeviceOutcome) throws(DeviceError) -> [Event] {
        switch (phase, outcome) {
        case (.notifications, .notified(let found)):
            guard let found else {
                phase = .filters
                return []
            }
            state.notificationIndex = found.index + 1
            return [readNotification(found.record, index: found.index)]
        case (.head, .head(let head)):
            // Epoch e's filter is written by its last block, height (e + 1) · length.
            let finished = head.height / epochLength
            lastFinishedEpoch = finished == 0 ? nil : finished - 1
            phase = .notifications
            return []
        case (.filters, .filtered(let result)):
            guard result.epoch == state.nextEpoch, result.matched.count == watched.count else { throw .busy }
            matched = zip(watched, result.matched).filter { $0.1 }.map { $0.0 }
            let event = Event.epochTested(epoch: result.epoch, matches: matched.count, filterBytes: result.filterBytes)
            paidInEpoch = false
            if matched.isEmpty { state.nextEpoch += 1 } else { phase = .accounts(epoch: result.epoch) }
            return [event]
        case (.accounts(let epoch), .account(let account)):
            guard let hit = matched.first, account.address == hit.address else { throw .busy }
            matched.removeFirst()
            var events: [Event] = []
            if account.state.balance > 0 || account.state.nonce > 0 {
                if hit.index >= state.payers[hit.payer].nextIndex {
                    state.payers[hit.payer].nextIndex = hit.index + 1
                    windowsMoved = true
                }
                paidInEpoch = true
                events.append(
                    .payment(
                        Payment(
                            address: hit.address, payer: hit.payer, index: hit.index, epoch: epoch, account: account))
                )
            } else {
                events.append(.emptyMatch(hit.address))
            }
            if matched.isEmpty {
                // Test the same epoch again: a window that moved may hold more of this epoch's payments.
                phase = .filters
                if !paidInEpoch { state.nextEpoch = epoch + 1 }
            }
            return events
        default:
            throw .busy
        }
    }

    /// The secret key of a payment found (to spend from it).
    public func spendingKey(_ payment: Payment) throws(PaymentCodeError) -> PrivateKey {
        try OneTimeKey.secretKey(receiver: keys, payer: state.payers[payment.payer].code, index: payment.index)
    }

    private mutating func readNotification(_ n: PaymentNotificationRecord, index: UInt64) -> Event {
        let sender: Address
        let designated: XOnlyPublicKey
        do {
            designated = try XOnlyPublicKey(bytes: n.sender)
            sender = Address(publicKey: designated)
        } catch {
            return .notificationSkipped(index: index, .notOnCurve)
        }
        let code: PaymentCode
        do {
            code = try PaymentCodeNotification.unmask(
                n.maskedCode, designated: designated, notificationKey: notificationKey,
                binding: PaymentCodeNotification.bindingKey(sender: sender, nonce: n.nonce))
        } catch .notificationUnreadable(let fault) {
            return .notificationSkipped(index: index, fault)
        } catch {
            return .notificationSkipped(index: index, .notOnCurve)
        }
        if state.payers.contains(where: { $0.code == code }) { return .payerKnown(sender) }
        guard state.payers.count < Self.maxPayers else { return .payersFull(sender) }
        state.payers.append(State.Payer(code: code, nextIndex: 0))
        windowsMoved = true
        return .payerAdded(sender)
    }

    private func watchedAddresses() -> [(payer: Int, index: UInt32, address: Address)] {
        var out: [(payer: Int, index: UInt32, address: Address)] = []
        for (p, payer) in state.payers.enumerated() {
            var index = payer.nextIndex
            while index < payer.nextIndex &+ Self.window {
                // BIP47: an index whose tweak is not a scalar is skipped by payer and receiver alike.
                if let key = try? OneTimeKey.secretKey(receiver: keys, payer: payer.code, index: index) {
                    out.append((p, index, Address(publicKey: key.xOnlyPublicKey)))
                }
                index += 1
            }
        }
        return out
    }
}
