import AmarsCodec
import AmarsCrypto
import Chain
import DeviceCore
import DeviceProtocol
import GatewayTestSupport
import Ledger
import LightClient
import XCTest

@testable import DeviceGateway

/// The device's side of HTLCs and payment channels, DeviceCore's session driven in-process against a real chain's
/// device handlers: what it proves, what it claims, and every answer it refuses.
final class ContractSessionTests: XCTestCase {
    static let deviceKey = CoAPFixture.key(9)
    static var device: Address { CoAPFixture.address(deviceKey) }
    static let secret = Bytes32(w0: 0x5ec2e7, w1: 1, w2: 2, w3: 3)

    /// A chain where the device holds funds for fees and Alice locked 700,000 units for it under the secret's hash
    /// until block `expiry`. Returns the lock's id.
    func lockedForDevice(expiry: UInt64 = 12) throws -> (CoAPFixture, Bytes32) {
        let f = try CoAPFixture(epochLength: 4, start: false)
        _ = try f.node.submit(f.transfer(from: f.alice, nonce: 0, amount: 100_000, to: Self.device))
        try f.produceBlock()
        let lock = HTLCLock(
            recipient: Self.device, amount: 700_000, hashLock: SHA256.hash(Self.secret.bytes), expiryHeight: expiry)
        try f.aliceIncludes(.htlcLock(lock))
        let id = try XCTUnwrap(f.node.block(at: f.node.head.height)?.finalized.block.transactions.first?.id)
        return (f, id)
    }

    func testDeviceProvesTheHTLCThenClaimsItAndTheClaimIsProvenFinal() throws {
        let (f, id) = try lockedForDevice()
        defer { f.close() }
        var (session, link) = try anchored(f, wallet: DeviceWallet(key: Self.deviceKey, nextNonce: 0))
        guard case .htlc(let open) = try session.run(.htlc(id), over: &link) else { return XCTFail() }
        XCTAssertEqual(open.state?.status, .open)
        XCTAssertEqual(open.state?.amount, 700_000)
        XCTAssertEqual(open.state?.recipient, Self.device)
        XCTAssertEqual(open.header.height, f.node.head.height)

        let before = f.node.account(Self.device).state.balance
        link.onSleep = { _ in _ = try? f.produceBlock() }
        let order = HTLCClaimOrder(lockID: id, preimage: Self.secret, finalityMillis: 5_000)
        var reports: [DeviceReport] = []
        guard case .claimed(let claimed) = try session.run(.claim(order), over: &link, onReport: { reports.append($0) })
        else { return XCTFail() }
        // A header's certificate is checked once: the head did not move since the contract was proven, so the
        // head, the contract's proof and the account's all name a block already verified. The block that
        // includes the claim is the only header checked.
        let verified = reports.compactMap { if case .headerVerified(let h, _, _) = $0 { h } else { nil } }
        XCTAssertEqual(verified, [claimed.payment.inclusion.header.height])
        XCTAssertTrue(
            reports.contains(.claimable(lockID: id, amount: 700_000, expiryHeight: 12, height: open.header.height)),
            "\(reports)")
        XCTAssertEqual(claimed.lockID, id)
        XCTAssertEqual(claimed.amount, 700_000)
        XCTAssertEqual(claimed.payment.inclusion.receipt.status, .success)
        XCTAssertEqual(session.wallet?.nextNonce, 1)
        let fee = claimed.payment.inclusion.receipt.feePaid
        XCTAssertEqual(f.node.account(Self.device).state.balance, before + 700_000 - fee)
        // The chain holds the claim and its secret, and the device proves it.
        guard case .htlc(let after) = try session.run(.htlc(id), over: &link) else { return XCTFail() }
        XCTAssertEqual(after.state?.status, .claimed)
        XCTAssertEqual(after.state?.preimage, Self.secret)
        // The order of the claim's requests: head, the contract, the account, the claim, its proof.
        // (Each proof's block header is asked for too.)
        let claimRequests = link.requests.map(\.resource).filter { $0 != .headers }.drop { $0 != .htlcProof }
        XCTAssertEqual(
            Array(claimRequests.prefix(6)), [.htlcProof, .head, .htlcProof, .accountProof, .transaction, .txProof])

        // A second claim is refused by the device, from the proven state: nothing signed, nothing sent.
        let sent = link.requests.filter { $0.resource == .transaction }.count
        XCTAssertEqual(deviceError { _ = try session.run(.claim(order), over: &link) }, .htlc(.notOpen))
        XCTAssertEqual(link.requests.filter { $0.resource == .transaction }.count, sent)
    }

    func testAClaimTheChainWouldRefuseIsRefusedBeforeAnythingIsSigned() throws {
        let (f, id) = try lockedForDevice(expiry: 8)
        defer { f.close() }
        var (session, link) = try anchored(f, wallet: DeviceWallet(key: Self.deviceKey, nextNonce: 0))
        func refusal(_ order: HTLCClaimOrder) -> DeviceError? {
            deviceError { _ = try session.run(.claim(order), over: &link) }
        }
        let wrong = Bytes32(w0: 1, w1: 1, w2: 1, w3: 1)
        XCTAssertEqual(refusal(HTLCClaimOrder(lockID: id, preimage: wrong)), .htlc(.wrongPreimage))
        let unknown = Bytes32(w0: 9, w1: 9, w2: 9, w3: 9)
        XCTAssertEqual(refusal(HTLCClaimOrder(lockID: unknown, preimage: Self.secret)), .htlc(.unknownHTLC))
        // Bob is not the recipient.
        session.setWallet(DeviceWallet(key: f.bob, nextNonce: 0))
        XCTAssertEqual(refusal(HTLCClaimOrder(lockID: id, preimage: Self.secret)), .htlc(.notRecipient))
        // Past the expiry: the claim would land after block 8.
        session.setWallet(DeviceWallet(key: Self.deviceKey, nextNonce: 0))
        while f.node.head.height < 8 { try f.produceBlock() }
        XCTAssertEqual(
            refusal(HTLCClaimOrder(lockID: id, preimage: Self.secret)), .htlc(.claimTooLate(expiryHeight: 8)))
        XCTAssertFalse(link.requests.contains { $0.resource == .transaction }, "nothing was ever submitted")
        XCTAssertEqual(f.node.account(Self.device).state.nonce, 0)
        // A session without a key claims nothing.
        var keyless = try anchored(f).0
        XCTAssertEqual(
            deviceError { _ = try keyless.run(.claim(HTLCClaimOrder(lockID: id, preimage: Self.secret)), over: &link) },
            .noWallet)
    }

    func testAGatewayLyingAboutAnHTLCIsRefused() throws {
        let (f, id) = try lockedForDevice()
        defer { f.close() }
        var (session, link) = try anchored(f, wallet: DeviceWallet(key: Self.deviceKey, nextNonce: 0))
        let genuine = f.server.handlers.handle(.htlcProof, query: Array("id=\(Hex.encode(id.bytes))".utf8), body: [])
        var payload = try HTLCProofPayload(decoding: genuine.payload)
        // More than was locked: the proof no longer matches the state root.
        payload.state?.amount = 7_000_000
        link.intercept = { $0.resource == .htlcProof ? DeviceAnswer(code: .content, body: payload.encoded) : nil }
        guard case .rejected(_, .htlcProof)? = deviceError({ _ = try session.run(.htlc(id), over: &link) }) else {
            return XCTFail()
        }
        // Claimed away: a claim shown as absent does not verify either.
        payload = try HTLCProofPayload(decoding: genuine.payload)
        payload.state = nil
        guard case .rejected(_, .htlcProof)? = deviceError({ _ = try session.run(.htlc(id), over: &link) }) else {
            return XCTFail()
        }
        // The genuine proof replayed after the head moved on: too old to show the contract still open.
        payload = try HTLCProofPayload(decoding: genuine.payload)
        try f.produceBlock()
        XCTAssertEqual(
            deviceError { _ = try session.run(.claim(HTLCClaimOrder(lockID: id, preimage: Self.secret)), over: &link) },
            .inconsistent(
                .staleObjectProof(.htlcProof, proofHeight: payload.height, headHeight: f.node.head.height)))
        // Bytes that are no proof at all (past the height they start with).
        let garbageBody = [UInt8(f.node.head.height), 2, 3]
        link.intercept = { $0.resource == .htlcProof ? DeviceAnswer(code: .content, body: garbageBody) : nil }
        let garbage = deviceError { _ = try session.run(.htlc(id), over: &link) }
        guard case .undecodable(.htlcProof, _)? = garbage else { return XCTFail("\(String(describing: garbage))") }
        XCTAssertFalse(link.requests.contains { $0.resource == .transaction })
    }

    func testTheRecipientProvesItsChannelAndJudgesUpdatesAgainstIt() throws {
        let f = try CoAPFixture(epochLength: 4, start: false)
        defer { f.close() }
        let open = ChannelOpen(recipient: Self.device, deposit: 50_000, expiryHeight: 40)
        try f.aliceIncludes(.channelOpen(open))
        let id = try XCTUnwrap(f.node.block(at: f.node.head.height)?.finalized.block.transactions.first?.id)
        var (session, link) = try anchored(f)
        guard case .channel(let proven) = try session.run(.channel(id), over: &link) else { return XCTFail() }
        let channel = try XCTUnwrap(proven.state)
        XCTAssertEqual(channel.deposit, 50_000)
        XCTAssertEqual(channel.recipient, Self.device)
        XCTAssertEqual(channel.senderKey, f.alice.xOnlyPublicKey.bytes)
        // The rule the recipient applies, now against a state it proved itself.
        let good = ChannelUpdate(channelID: id, paid: 1_000, sender: f.alice)
        XCTAssertNoThrow(try channel.accept(good, channelID: id, holding: nil, height: proven.header.height))
        let forged = ChannelUpdate(channelID: id, paid: 1_000, sender: f.bob)
        XCTAssertThrowsError(try channel.accept(forged, channelID: id, holding: nil, height: proven.header.height))

        // A channel that does not exist is proven absent; one with a doctored deposit is refused.
        guard case .channel(let absent) = try session.run(.channel(Bytes32(w0: 4, w1: 4, w2: 4, w3: 4)), over: &link)
        else { return XCTFail() }
        XCTAssertNil(absent.state)
        let genuine = f.server.handlers.handle(.channelProof, query: Array("id=\(Hex.encode(id.bytes))".utf8), body: [])
        var payload = try ChannelProofPayload(decoding: genuine.payload)
        payload.state?.deposit = 5_000_000
        link.intercept = { $0.resource == .channelProof ? DeviceAnswer(code: .content, body: payload.encoded) : nil }
        guard case .rejected(_, .channelProof)? = deviceError({ _ = try session.run(.channel(id), over: &link) }) else {
            return XCTFail()
        }
    }

    func testAHeaderIsCheckedOnceUntilTrustIsReplaced() throws {
        let (f, _) = try lockedForDevice()
        defer { f.close() }
        var (session, link) = try anchored(f)
        func checked(_ operation: DeviceOperation) throws -> [UInt64] {
            var reports: [DeviceReport] = []
            _ = try session.run(operation, over: &link, onReport: { reports.append($0) })
            return reports.compactMap { if case .headerVerified(let h, _, _) = $0 { h } else { nil } }
        }
        let head = f.node.head.height
        XCTAssertEqual(try checked(.head), [head])
        XCTAssertEqual(try checked(.head), [], "the same header is not checked again")
        XCTAssertEqual(try checked(.account(Self.device)), [], "nor for a proof at that block")
        // Trust replaced (a resumed or re-anchored state): nothing verified before counts.
        session.resume(trusted: session.trusted!)
        XCTAssertEqual(try checked(.head), [head])
        // A new block is a new header.
        try f.produceBlock()
        XCTAssertEqual(try checked(.head), [head + 1])
    }
}
