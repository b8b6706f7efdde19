import AmarsCodec
import AmarsCrypto
import XCTest

@testable import Network

/// The handshake state machine, driven frame by frame with no I/O.
final class HandshakeTests: XCTestCase {
    let alice = Fixture.key(1)
    let bob = Fixture.key(2)
    let mallory = Fixture.key(3)

    private func machine(
        _ key: PrivateKey, nonce: UInt64, allowed: [PrivateKey]? = nil, chainID: UInt32 = Fixture.chainID,
        genesis: Bytes32 = Fixture.genesis, version: UInt16 = HandshakeParameters.currentVersion,
        initiator: Bool? = nil
    ) -> HandshakeMachine {
        let allowedKeys = Set((allowed ?? [alice, bob]).map(\.xOnlyPublicKey.bytes))
        let parameters = HandshakeParameters(
            chainID: chainID, genesisHash: genesis, allowedKeys: allowedKeys, version: version)
        return HandshakeMachine(
            parameters: parameters, localKey: key, nonce: Bytes32(w0: nonce, w1: 0, w2: 0, w3: 1),
            auxRandom: Bytes32(w0: nonce, w1: 9, w2: 9, w3: 9), isInitiator: initiator ?? (nonce % 2 == 1))
    }

    /// Runs both machines to the end; returns what each side concluded.
    private func run(
        _ a: inout HandshakeMachine, _ b: inout HandshakeMachine
    ) -> (HandshakeMachine.Action?, HandshakeMachine.Action?) {
        let helloA = a.start()
        let helloB = b.start()
        let replyA = a.receive(helloB)
        let replyB = b.receive(helloA)
        guard case .send(let authA) = replyA else { return (replyA, nil) }
        guard case .send(let authB) = replyB else { return (nil, replyB) }
        let confirmA = a.receive(authB)
        let confirmB = b.receive(authA)
        guard case .send(let sealedA) = confirmA else { return (confirmA, nil) }
        guard case .send(let sealedB) = confirmB else { return (nil, confirmB) }
        return (a.receive(sealedB), b.receive(sealedA))
    }

    func testHonestPeersAuthenticateEachOther() {
        var a = machine(alice, nonce: 1)
        var b = machine(bob, nonce: 2)
        let (resultA, resultB) = run(&a, &b)
        XCTAssertEqual(resultA, .established(peerKey: bob.xOnlyPublicKey.bytes))
        XCTAssertEqual(resultB, .established(peerKey: alice.xOnlyPublicKey.bytes))
        // Nothing more is accepted by the machine once established.
        XCTAssertEqual(a.receive(Frame(kind: ControlKind.hello, payload: [])), .fail(.unexpectedMessage))
    }

    /// One row per refusal: what the remote side does differently, and what the local side must conclude.
    func testRefusalTable() {
        struct Row {
            let name: String
            let remote: HandshakeMachine
            let local: HandshakeMachine
            let expected: HandshakeFailure
        }
        let otherGenesis = Bytes32(w0: 1, w1: 1, w2: 1, w3: 1)
        let rows = [
            Row(
                name: "wrong chain", remote: machine(bob, nonce: 2, chainID: 99), local: machine(alice, nonce: 1),
                expected: .wrongChain),
            Row(
                name: "wrong genesis", remote: machine(bob, nonce: 2, genesis: otherGenesis),
                local: machine(alice, nonce: 1), expected: .wrongGenesis),
            Row(
                name: "version", remote: machine(bob, nonce: 2, version: 7), local: machine(alice, nonce: 1),
                expected: .versionMismatch),
            Row(
                name: "unknown key", remote: machine(mallory, nonce: 2, allowed: [alice, bob, mallory]),
                local: machine(alice, nonce: 1), expected: .unknownKey),
            Row(
                name: "self", remote: machine(alice, nonce: 2), local: machine(alice, nonce: 1),
                expected: .selfConnection),
        ]
        for row in rows {
            var remote = row.remote
            var local = row.local
            _ = local.start()
            let hello = remote.start()
            XCTAssertEqual(local.receive(hello), .fail(row.expected), row.name)
            XCTAssertEqual(local.state, .failed(row.expected), row.name)
            // Failure is sticky.
            XCTAssertEqual(local.receive(hello), .fail(row.expected), row.name)
        }
    }

    func testBadSignatureIsRefused() {
        var a = machine(alice, nonce: 1)
        var b = machine(bob, nonce: 2)
        _ = a.start()
        XCTAssertEqual(a.receive(b.start()).isSend, true)
        var forged = Auth(signature: Bytes64(first: .zero, second: .zero))
        XCTAssertEqual(a.receive(forged.frame), .fail(.badSignature))
        // A valid signature with one bit flipped.
        var a2 = machine(alice, nonce: 1)
        var b2 = machine(bob, nonce: 2)
        let helloA = a2.start()
        _ = a2.receive(b2.start())
        guard case .send(let auth) = b2.receive(helloA) else { return XCTFail("bob should answer") }
        forged = Auth(decoding: auth.payload)!
        forged.signature.second.w3 ^= 1
        XCTAssertEqual(a2.receive(forged.frame), .fail(.badSignature))
    }

    func testImpersonationWithAnotherKeysSignatureIsRefused() {
        // Mallory claims to be Bob but can only sign with her own key.
        var a = machine(alice, nonce: 1)
        var fakeBob = machine(bob, nonce: 2)
        _ = a.start()
        _ = a.receive(fakeBob.start())
        let message = Auth.transcript(
            chainID: Fixture.chainID, genesisHash: Fixture.genesis, peerNonce: Bytes32(w0: 1, w1: 0, w2: 0, w3: 1),
            ownNonce: Bytes32(w0: 2, w1: 0, w2: 0, w3: 1), ownKey: bob.xOnlyPublicKey.bytes,
            peerKey: alice.xOnlyPublicKey.bytes)
        let auth = Auth(signature: mallory.signSchnorr(message, auxRandom: .zero))
        XCTAssertEqual(a.receive(auth.frame), .fail(.badSignature))
    }

    func testAuthReplayedFromAnotherSessionIsRefused() {
        // Session 1: record Bob's Auth.
        var a1 = machine(alice, nonce: 1)
        var b1 = machine(bob, nonce: 2)
        let helloA1 = a1.start()
        _ = b1.start()
        guard case .send(let recordedAuth) = b1.receive(helloA1) else { return XCTFail("bob should answer") }
        // Session 2: Alice picks a fresh nonce; an attacker replays Bob's Hello and the recorded Auth.
        var a2 = machine(alice, nonce: 11)
        _ = a2.start()
        var replayedHelloSource = machine(bob, nonce: 2)
        XCTAssertTrue(a2.receive(replayedHelloSource.start()).isSend)
        XCTAssertEqual(a2.receive(recordedAuth), .fail(.badSignature))
    }

    func testEarlyAndOutOfOrderMessagesAreRefused() {
        // Node data before Hello.
        var a = machine(alice, nonce: 1)
        _ = a.start()
        XCTAssertEqual(a.receive(Frame(kind: Fixture.gossipKind, payload: [1])), .fail(.unexpectedMessage))
        // Auth before Hello.
        var b = machine(alice, nonce: 1)
        _ = b.start()
        XCTAssertEqual(
            b.receive(Auth(signature: Bytes64(first: .zero, second: .zero)).frame), .fail(.unexpectedMessage))
        // Two Hellos.
        var c = machine(alice, nonce: 1)
        _ = c.start()
        var peer = machine(bob, nonce: 2)
        let hello = peer.start()
        XCTAssertTrue(c.receive(hello).isSend)
        XCTAssertEqual(c.receive(hello), .fail(.unexpectedMessage))
        // Node data between Hello and Auth.
        var d = machine(alice, nonce: 1)
        _ = d.start()
        XCTAssertTrue(d.receive(hello).isSend)
        XCTAssertEqual(d.receive(Frame(kind: Fixture.gossipKind, payload: [])), .fail(.unexpectedMessage))
        // Anything before start().
        var e = machine(alice, nonce: 1)
        XCTAssertEqual(e.receive(hello), .fail(.unexpectedMessage))
    }

    func testMalformedMessagesAreRefused() {
        var a = machine(alice, nonce: 1)
        _ = a.start()
        XCTAssertEqual(a.receive(Frame(kind: ControlKind.hello, payload: [1, 2, 3])), .fail(.malformed))
        var b = machine(alice, nonce: 1)
        _ = b.start()
        var peer = machine(bob, nonce: 2)
        XCTAssertTrue(b.receive(peer.start()).isSend)
        XCTAssertEqual(b.receive(Frame(kind: ControlKind.auth, payload: [0])), .fail(.malformed))
    }

    func testInvalidCurvePointKeyIsRefused() {
        // x = 0 is not on secp256k1 (y^2 = 7 has no square root), so no one can hold that key.
        let bogus = Bytes32.zero
        var a = HandshakeMachine(
            parameters: HandshakeParameters(
                chainID: Fixture.chainID, genesisHash: Fixture.genesis,
                allowedKeys: [bogus, bob.xOnlyPublicKey.bytes]),
            localKey: alice, nonce: .zero, auxRandom: .zero, isInitiator: true)
        _ = a.start()
        let hello = Hello(
            version: HandshakeParameters.currentVersion, chainID: Fixture.chainID, genesisHash: Fixture.genesis,
            nodeKey: bogus, nonce: .zero)
        XCTAssertEqual(a.receive(hello.frame), .fail(.invalidKey))
    }

    /// After the handshake both sides hold matching frame keys: what one seals the other opens, in order, once;
    /// anything altered, replayed, reordered, reflected or sealed in another session is refused.
    func testSessionTagsAuthenticateEveryFrameInOrder() throws {
        var a = machine(alice, nonce: 1)
        var b = machine(bob, nonce: 2)
        _ = run(&a, &b)
        var sealer = try XCTUnwrap(a.session)
        var opener = try XCTUnwrap(b.session)
        let frames = (0..<5).map {
            Frame(kind: Fixture.gossipKind, payload: [UInt8](repeating: UInt8($0), count: $0 * 7))
        }
        let sealed = frames.map { sealer.seal($0) }
        XCTAssertTrue(sealed.allSatisfy { $0.payload.count >= PeerSession.tagSize })
        var reordered = opener
        XCTAssertNil(reordered.open(sealed[1]), "frame 1 before frame 0")
        var reflected = sealer
        XCTAssertNil(reflected.open(sealed[0]), "a frame sent back to its sender")
        for (frame, wire) in zip(frames, sealed) { XCTAssertEqual(opener.open(wire), frame) }
        XCTAssertNil(opener.open(sealed[4]), "a replay of the last frame")

        // Altered on the way: payload, kind, tag, or cut short.
        var fresh = try XCTUnwrap(b.session)
        var tampered = sealed[3]
        tampered.payload[0] ^= 1
        XCTAssertNil(fresh.open(tampered))
        var kindChanged = sealed[0]
        kindChanged.kind = Fixture.requestKind
        XCTAssertNil(fresh.open(kindChanged))
        var tagChanged = sealed[0]
        tagChanged.payload[tagChanged.payload.count - 1] ^= 0x80
        XCTAssertNil(fresh.open(tagChanged))
        XCTAssertNil(fresh.open(Frame(kind: Fixture.gossipKind, payload: Array(sealed[0].payload.prefix(15)))))
        XCTAssertEqual(fresh.open(sealed[0]), frames[0], "the refusals did not advance the sequence")

        // Another connection of the same two keys has other ephemeral keys, hence other frame keys.
        var a2 = machine(alice, nonce: 11)
        var b2 = machine(bob, nonce: 12)
        _ = run(&a2, &b2)
        var otherSession = try XCTUnwrap(b2.session)
        XCTAssertNil(otherSession.open(sealed[0]))
    }

    /// A man in the middle who swaps in his own ephemeral key (to hold the frame keys) breaks the Auth signature.
    func testSwappedEphemeralKeyIsRefused() throws {
        var a = machine(alice, nonce: 1)
        var b = machine(bob, nonce: 2)
        let helloA = a.start()
        let helloB = b.start()
        var swapped = try XCTUnwrap(Hello(decoding: helloB.payload))
        swapped.ephemeralKey = mallory.publicKey.compressed
        XCTAssertTrue(a.receive(swapped.frame).isSend)
        guard case .send(let authB) = b.receive(helloA) else { return XCTFail("bob should answer") }
        XCTAssertEqual(a.receive(authB), .fail(.badSignature))
        XCTAssertNil(a.session, "no frame keys after a failed handshake")
        // A Hello whose ephemeral key is not a point is refused outright.
        var c = machine(alice, nonce: 1)
        _ = c.start()
        var bogus = try XCTUnwrap(Hello(decoding: helloB.payload))
        bogus.ephemeralKey = [0x02] + [UInt8](repeating: 0, count: 32)
        XCTAssertEqual(c.receive(bogus.frame), .fail(.invalidKey))
    }

    /// An outsider who dials both ends and relays their handshakes byte for byte: each end accepted a connection,
    /// so each names the other as the dialer, the two Auths sign different dialers, and neither verifies. No
    /// session exists to be attributed to either key.
    func testRelayedHandshakeBetweenTwoRespondersFails() {
        var a = machine(alice, nonce: 1, initiator: false)
        var b = machine(bob, nonce: 2, initiator: false)
        let helloA = a.start()
        let helloB = b.start()
        guard case .send(let authA) = a.receive(helloB), case .send(let authB) = b.receive(helloA) else {
            return XCTFail("both answer Hello")
        }
        XCTAssertEqual(a.receive(authB), .fail(.badSignature))
        XCTAssertEqual(b.receive(authA), .fail(.badSignature))
        XCTAssertNil(a.session)
        XCTAssertNil(b.session)
        // Two dialers fail the same way; one of each succeeds (the honest case).
        var c = machine(alice, nonce: 1, initiator: true)
        var d = machine(bob, nonce: 2, initiator: true)
        XCTAssertEqual(run(&c, &d).0, .fail(.badSignature))
        var e = machine(alice, nonce: 1, initiator: false)
        var f = machine(bob, nonce: 2, initiator: true)
        XCTAssertEqual(run(&e, &f).0, .established(peerKey: bob.xOnlyPublicKey.bytes))
    }

    /// After a verified Auth, the next frame must be the peer's Confirm under the session keys: a frame injected
    /// there (a Confirm with a bad tag, another kind) fails the handshake, so nothing is attributed to the key.
    func testOnlyATaggedConfirmEstablishes() throws {
        for tamper in ["tag", "kind", "payload"] {
            var a = machine(alice, nonce: 1)
            var b = machine(bob, nonce: 2)
            let helloA = a.start()
            let helloB = b.start()
            guard case .send(let authA) = a.receive(helloB), case .send(let authB) = b.receive(helloA) else {
                return XCTFail("both answer Hello")
            }
            guard case .send(let confirmA) = a.receive(authB) else { return XCTFail("a confirms") }
            _ = b.receive(authA)
            XCTAssertEqual(confirmA.kind, ControlKind.confirm)
            XCTAssertEqual(confirmA.payload.count, PeerSession.tagSize)
            var forged = confirmA
            switch tamper {
            case "tag": forged.payload[0] ^= 1
            case "kind": forged.kind = Fixture.gossipKind
            default: forged.payload = [1] + forged.payload
            }
            let expected: HandshakeFailure = tamper == "kind" ? .unexpectedMessage : .badConfirmation
            XCTAssertEqual(b.receive(forged), .fail(expected), tamper)
            XCTAssertNil(b.session, tamper)
        }
    }

    func testHelloEncodingRoundTrips() {
        let hello = Hello(
            version: 0x0102, chainID: 0xDEAD_BEEF, genesisHash: Fixture.genesis,
            nodeKey: alice.xOnlyPublicKey.bytes, nonce: Bytes32(w0: 5, w1: 6, w2: 7, w3: 8))
        XCTAssertEqual(hello.encoded.count, Hello.encodedSize)
        XCTAssertEqual(Array(hello.encoded.prefix(6)), [0x01, 0x02, 0xDE, 0xAD, 0xBE, 0xEF])
        XCTAssertEqual(Hello(decoding: hello.encoded), hello)
        XCTAssertNil(Hello(decoding: hello.encoded + [0]))
        XCTAssertNil(Auth(decoding: [UInt8](repeating: 0, count: 63)))
    }
}

extension HandshakeMachine.Action {
    var isSend: Bool {
        if case .send = self { return true }
        return false
    }
}
