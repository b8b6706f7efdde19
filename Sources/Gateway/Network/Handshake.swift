import AmarsCodec
import AmarsCrypto

/// What both ends must agree on before any node traffic flows.
public struct HandshakeParameters: Sendable {
    /// 2: Hello carries an ephemeral key, and node frames carry a ``PeerSession`` tag. 3: Auth names who dialed,
    /// and each side proves the frame keys with a tagged ``Confirm`` before anything is attributed to its key.
    public static let currentVersion: UInt16 = 3

    public var version: UInt16
    public var chainID: UInt32
    public var genesisHash: Bytes32
    /// The committee / configured peers: x-only keys allowed to connect. Anyone else is refused after Hello.
    public var allowedKeys: Set<Bytes32>

    public init(
        chainID: UInt32, genesisHash: Bytes32, allowedKeys: Set<Bytes32>, version: UInt16 = currentVersion
    ) {
        self.version = version
        self.chainID = chainID
        self.genesisHash = genesisHash
        self.allowedKeys = allowedKeys
    }
}

/// First message of each side: who I claim to be, on which chain, a fresh nonce the peer must sign over, and a
/// fresh ephemeral public key (compressed) for the session's frame keys.
public struct Hello: Sendable, Hashable {
    public static let encodedSize = 2 + 4 + 32 + 32 + 32 + 33

    /// The generator, compressed: a valid point for Hellos built by tests that never reach the session.
    public static let placeholderEphemeral: [UInt8] =
        [0x02] + [
            0x79, 0xBE, 0x66, 0x7E, 0xF9, 0xDC, 0xBB, 0xAC, 0x55, 0xA0, 0x62, 0x95, 0xCE, 0x87, 0x0B, 0x07,
            0x02, 0x9B, 0xFC, 0xDB, 0x2D, 0xCE, 0x28, 0xD9, 0x59, 0xF2, 0x81, 0x5B, 0x16, 0xF8, 0x17, 0x98,
        ]

    public var version: UInt16
    public var chainID: UInt32
    public var genesisHash: Bytes32
    public var nodeKey: Bytes32
    public var nonce: Bytes32
    public var ephemeralKey: [UInt8]

    public init(
        version: UInt16, chainID: UInt32, genesisHash: Bytes32, nodeKey: Bytes32, nonce: Bytes32,
        ephemeralKey: [UInt8] = Hello.placeholderEphemeral
    ) {
        self.version = version
        self.chainID = chainID
        self.genesisHash = genesisHash
        self.nodeKey = nodeKey
        self.nonce = nonce
        self.ephemeralKey = ephemeralKey
    }

    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Hello.encodedSize)
        out.append(UInt8(truncatingIfNeeded: version >> 8))
        out.append(UInt8(truncatingIfNeeded: version))
        out.append(contentsOf: chainID.bigEndianBytes)
        out.append(contentsOf: genesisHash.bytes)
        out.append(contentsOf: nodeKey.bytes)
        out.append(contentsOf: nonce.bytes)
        out.append(contentsOf: ephemeralKey)
        return out
    }

    /// Exactly `encodedSize` bytes or nil.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count == Hello.encodedSize else { return nil }
        version = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        chainID = bytes[2..<6].reduce(0) { $0 << 8 | UInt32($1) }
        guard let genesis = Bytes32(bytes[6..<38]), let key = Bytes32(bytes[38..<70]),
            let nonce = Bytes32(bytes[70..<102])
        else { return nil }
        self.genesisHash = genesis
        self.nodeKey = key
        self.nonce = nonce
        self.ephemeralKey = Array(bytes[102..<135])
    }

    var frame: Frame { Frame(kind: ControlKind.hello, payload: encoded) }
}

/// Second message: proof of the key claimed in Hello, bound to both nonces of this session.
public struct Auth: Sendable, Hashable {
    public static let encodedSize = 64

    public var signature: Bytes64

    public init(signature: Bytes64) { self.signature = signature }

    public var encoded: [UInt8] { signature.first.bytes + signature.second.bytes }

    public init?(decoding bytes: [UInt8]) {
        guard bytes.count == Auth.encodedSize, let first = Bytes32(bytes[0..<32]), let second = Bytes32(bytes[32..<64])
        else { return nil }
        signature = Bytes64(first: first, second: second)
    }

    var frame: Frame { Frame(kind: ControlKind.auth, payload: encoded) }

    private static let tag = TaggedHash(tag: "AmarsPeerAuth")

    /// The message a signer signs: chain, genesis, the peer's nonce, its own nonce, its own key, the peer's key,
    /// both ephemeral keys, and the key of the side that dialed.
    ///
    /// The peer's nonce makes the signature worthless in any other session (the verifier picked it fresh); the
    /// chain and genesis stop a signature from a test network being used on the main one; both keys stop a man in
    /// the middle from relaying one session's Auth into another with a different pair; the ephemeral keys stop
    /// him from putting his own in and holding the frame keys. The dialer's key stops an outsider who dials both
    /// ends and relays their handshakes byte for byte: each end then believes the other dialed, they sign
    /// different dialers, and neither Auth verifies. Without it the relayed session would be genuine, and the
    /// rule that settles duplicate connections by who dialed would read it differently at each end.
    public static func transcript(
        chainID: UInt32, genesisHash: Bytes32, peerNonce: Bytes32, ownNonce: Bytes32, ownKey: Bytes32,
        peerKey: Bytes32, ownEphemeral: [UInt8] = [], peerEphemeral: [UInt8] = [], initiator: Bytes32 = .zero
    ) -> Bytes32 {
        var hasher = tag.hasher()
        hasher.update(chainID.bigEndianBytes)
        hasher.update(genesisHash)
        hasher.update(peerNonce)
        hasher.update(ownNonce)
        hasher.update(ownKey)
        hasher.update(peerKey)
        hasher.update(ownEphemeral)
        hasher.update(peerEphemeral)
        hasher.update(initiator)
        return hasher.finalize()
    }

    private static let sessionTag = TaggedHash(tag: "AmarsPeerSession")

    /// What the frame keys are bound to: both Hellos, in the order of their node keys (the same on both sides).
    static func sessionTranscript(_ a: Hello, _ b: Hello) -> Bytes32 {
        let (first, second) = a.nodeKey.bytes.lexicographicallyPrecedes(b.nodeKey.bytes) ? (a, b) : (b, a)
        return sessionTag.hash(first.encoded + second.encoded)
    }
}

/// Third message, the first one under the session's frame keys: an empty frame with its tag. Receiving one that
/// opens proves the peer derived the same keys, so the session is the peer's and not a relay's; only then does
/// the registry let the connection replace another, count against the key, or get the key banned.
enum Confirm {
    static let frame = Frame(kind: ControlKind.confirm, payload: [])
}

extension UInt32 {
    var bigEndianBytes: [UInt8] {
        [
            UInt8(truncatingIfNeeded: self >> 24), UInt8(truncatingIfNeeded: self >> 16),
            UInt8(truncatingIfNeeded: self >> 8), UInt8(truncatingIfNeeded: self),
        ]
    }
}

/// Why a handshake was refused.
public enum HandshakeFailure: Error, Sendable, Hashable {
    /// A Hello or Auth payload of the wrong size.
    case malformed
    case versionMismatch
    case wrongChain
    case wrongGenesis
    /// The claimed key is not in the allowed set.
    case unknownKey
    /// The claimed key is not a valid x-only key.
    case invalidKey
    /// The peer claimed our own key: we dialed ourselves (or someone replays our Hello).
    case selfConnection
    case badSignature
    /// The peer's first tagged frame did not open under the session keys (or was not a Confirm).
    case badConfirmation
    /// Auth before Hello, a second Hello, or anything after the handshake completed.
    case unexpectedMessage
}

/// The handshake as a pure state machine: frames in, frames out, no I/O and no clock, so every refusal can be
/// tested from a table. Timeouts, bans and duplicate connections are the caller's concern.
///
/// Both sides send Hello at once; each answers the peer's Hello with Auth, and the peer's verified Auth with a
/// tagged Confirm; a side is established when the peer's Confirm opens. As each message answers the peer's
/// previous one, an established side knows its own Confirm is already on its way.
public struct HandshakeMachine: Sendable {
    public enum State: Sendable, Hashable {
        case idle
        case awaitingHello
        case awaitingAuth(peerKey: Bytes32, peerNonce: Bytes32, peerEphemeral: [UInt8])
        case awaitingConfirm(peerKey: Bytes32)
        case established(peerKey: Bytes32)
        case failed(HandshakeFailure)
    }

    public enum Action: Sendable, Hashable {
        case send(Frame)
        case established(peerKey: Bytes32)
        case fail(HandshakeFailure)
    }

    public private(set) var state: State = .idle
    /// The frame keys, once established (each direction past its Confirm).
    public private(set) var session: PeerSession?
    let parameters: HandshakeParameters
    let localKey: PrivateKey
    /// True on the side that dialed: both Auths name the dialer.
    let isInitiator: Bool
    let localNonce: Bytes32
    let auxRandom: Bytes32
    /// Fresh per connection, derived from the caller's secret randomness.
    let ephemeral: PrivateKey
    private var ownHello: Hello?

    private static let ephemeralTag = TaggedHash(tag: "AmarsPeerEphemeral")

    /// `nonce` and `auxRandom` come from the caller's entropy source so tests are reproducible; `auxRandom` must be
    /// secret (the ephemeral key is derived from it). `isInitiator`: this side dialed the connection.
    public init(
        parameters: HandshakeParameters, localKey: PrivateKey, nonce: Bytes32, auxRandom: Bytes32, isInitiator: Bool
    ) {
        self.parameters = parameters
        self.localKey = localKey
        self.isInitiator = isInitiator
        self.localNonce = nonce
        self.auxRandom = auxRandom
        var counter: UInt8 = 0
        var key: PrivateKey?
        while key == nil {
            key = try? PrivateKey(bytes: Self.ephemeralTag.hash(auxRandom.bytes + nonce.bytes + [counter]))
            counter &+= 1
        }
        ephemeral = key!
    }

    /// Our Hello, to send as soon as the connection is up.
    public mutating func start() -> Frame {
        precondition(state == .idle, "start() is called once")
        state = .awaitingHello
        let hello = Hello(
            version: parameters.version, chainID: parameters.chainID, genesisHash: parameters.genesisHash,
            nodeKey: localKey.xOnlyPublicKey.bytes, nonce: localNonce, ephemeralKey: ephemeral.publicKey.compressed)
        ownHello = hello
        return hello.frame
    }

    /// Feeds one frame from the peer: answers a Hello with Auth, accepts a verifying Auth, and fails on anything
    /// else. Once failed, every further call returns the same failure.
    public mutating func receive(_ frame: Frame) -> Action {
        switch state {
        case .failed(let failure):
            return .fail(failure)
        case .idle, .established:
            return fail(.unexpectedMessage)
        case .awaitingHello:
            guard frame.kind == ControlKind.hello else { return fail(.unexpectedMessage) }
            guard let hello = Hello(decoding: frame.payload) else { return fail(.malformed) }
            if let failure = check(hello) { return fail(failure) }
            guard let peerEphemeral = try? PublicKey(compressed: hello.ephemeralKey), let ownHello else {
                return fail(.invalidKey)
            }
            state = .awaitingAuth(peerKey: hello.nodeKey, peerNonce: hello.nonce, peerEphemeral: hello.ephemeralKey)
            let ownEphemeral = ownHello.ephemeralKey
            let message = Auth.transcript(
                chainID: parameters.chainID, genesisHash: parameters.genesisHash, peerNonce: hello.nonce,
                ownNonce: localNonce, ownKey: localKey.xOnlyPublicKey.bytes, peerKey: hello.nodeKey,
                ownEphemeral: ownEphemeral, peerEphemeral: hello.ephemeralKey,
                initiator: initiator(peerKey: hello.nodeKey))
            // Ready for when the peer's Auth verifies; never used before that.
            session = PeerSession(
                shared: ephemeral.ecdh(peerEphemeral), transcript: Auth.sessionTranscript(ownHello, hello),
                ownKey: localKey.xOnlyPublicKey.bytes, peerKey: hello.nodeKey)
            return .send(Auth(signature: localKey.signSchnorr(message, auxRandom: auxRandom)).frame)
        case .awaitingAuth(let peerKey, let peerNonce, let peerEphemeral):
            guard frame.kind == ControlKind.auth else { return fail(.unexpectedMessage) }
            guard let auth = Auth(decoding: frame.payload) else { return fail(.malformed) }
            guard let key = try? XOnlyPublicKey(bytes: peerKey), let ownHello else { return fail(.invalidKey) }
            // The peer signed with itself as "own" and us as "peer".
            let message = Auth.transcript(
                chainID: parameters.chainID, genesisHash: parameters.genesisHash, peerNonce: localNonce,
                ownNonce: peerNonce, ownKey: peerKey, peerKey: localKey.xOnlyPublicKey.bytes,
                ownEphemeral: peerEphemeral, peerEphemeral: ownHello.ephemeralKey,
                initiator: initiator(peerKey: peerKey))
            guard key.verifySchnorr(auth.signature, message: message), session != nil else {
                return fail(.badSignature)
            }
            state = .awaitingConfirm(peerKey: peerKey)
            return .send(session!.seal(Confirm.frame))
        case .awaitingConfirm(let peerKey):
            guard frame.kind == ControlKind.confirm else { return fail(.unexpectedMessage) }
            guard let opened = session?.open(frame), opened.payload.isEmpty else { return fail(.badConfirmation) }
            state = .established(peerKey: peerKey)
            return .established(peerKey: peerKey)
        }
    }

    private func initiator(peerKey: Bytes32) -> Bytes32 {
        isInitiator ? localKey.xOnlyPublicKey.bytes : peerKey
    }

    private func check(_ hello: Hello) -> HandshakeFailure? {
        if hello.version != parameters.version { return .versionMismatch }
        if hello.chainID != parameters.chainID { return .wrongChain }
        if hello.genesisHash != parameters.genesisHash { return .wrongGenesis }
        if hello.nodeKey == localKey.xOnlyPublicKey.bytes { return .selfConnection }
        if !parameters.allowedKeys.contains(hello.nodeKey) { return .unknownKey }
        if (try? XOnlyPublicKey(bytes: hello.nodeKey)) == nil { return .invalidKey }
        return nil
    }

    private mutating func fail(_ failure: HandshakeFailure) -> Action {
        state = .failed(failure)
        session = nil
        return .fail(failure)
    }
}
