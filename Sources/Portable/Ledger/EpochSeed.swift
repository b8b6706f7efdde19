import AmarsCodec
import AmarsCrypto

extension Domain {
    /// Seed of an epoch: of the genesis hash (epoch 0) or of the previous seed and the epoch's VRF outputs.
    public static let epochSeed = TaggedHash(tag: "AmarsEpochSeed")
    /// The alpha a proposer proves with ECVRF at a height.
    public static let vrfInput = TaggedHash(tag: "AmarsVrfInput")
    /// One draw of the committee selection.
    public static let committeeDraw = TaggedHash(tag: "AmarsCommitteeDraw")
}

extension SHA256 {
    /// Feeds `value` as 8 big-endian bytes: every integer the seed and selection rules hash has a fixed width, so
    /// no two different inputs share an encoding.
    mutating func absorbBigEndian(_ value: UInt64) {
        withUnsafeBytes(of: value.bigEndian) { update($0) }
    }
}

/// The randomness beacon of Roll-DPoS (SPEC.md "Roll-DPoS" step 2): every epoch has a 32-byte seed, computed from
/// chain data alone, from which ``CommitteeSelection`` draws the next committee. Gateways and light clients run
/// these same functions, so they agree on a committee without trusting anyone who tells them what it is.
///
/// Conventions (one per epoch E):
/// - `seed(0) = genesis(genesisHash)`;
/// - at height h of epoch E the proposer publishes `pi = prove(alpha: vrfInput(seed(E), E, h))` in its block,
///   and `beta = ECVRF.verify(...)` is that block's VRF output;
/// - `seed(E + 1) = next(seed(E), E, [beta of every committed block of E, in height order])`, the last block of E
///   included (its proposer knows its own beta before it builds the checkpoint header that names the next
///   committee);
/// - the committee of E is `CommitteeSelection.select(pool(E), seed(E), E, committeeSize)`.
///
/// Why a VRF and not the block hashes: a proposer can vary a block hash at will (transaction order, timestamp),
/// and could grind it until the next committee suits it. A VRF output is unique for a key and an alpha, and the
/// alpha depends only on the seed, the epoch and the height, so a proposer has exactly one output per height
/// and nothing to grind.
///
/// Residual bias, by withholding: a proposer learns its beta before anyone else and can decline to propose
/// (let its round time out). Then the block at that height comes from the next round's proposer with a beta the
/// withholder cannot predict (that member's secret key), or the epoch simply has one block less. So withholding
/// only chooses between two seeds, the one it knows and an unpredictable one; it cannot pick a seed, only veto
/// one. For an outcome of probability p (say, "I am drawn"), that raises it at most to 1 − (1 − p)², less than
/// double. A coalition holding k proposal slots near the end of the epoch makes at most k such binary choices,
/// so at most 2^k candidate seeds, and it pays for each veto with a round timeout and the block reward, visible
/// on chain as a missed proposal. It is bounded further because finality is instant (no forks to choose
/// among), because a seed steers only one epoch's committee, and because the draw is restricted to the elected
/// pool with its stake weights, which no seed can change.
public enum EpochSeed {
    /// The seed of epoch 0. A 32-byte message under its own tag; ``next(seed:epoch:outputs:)`` hashes at least
    /// 48 bytes, so the two forms can never coincide.
    public static func genesis(genesisHash: Bytes32) -> Bytes32 {
        Domain.epochSeed.hash(genesisHash)
    }

    /// The 32-byte alpha the proposer at `height` of `epoch` proves. It binds the chain's seed (so it is unknown
    /// before the previous epoch ended), the epoch and the height, and not the round: a member who proposes at
    /// several rounds of one height gets the same output each time, so retrying a round buys nothing.
    public static func vrfInput(seed: Bytes32, epoch: UInt64, height: UInt64) -> [UInt8] {
        var hasher = Domain.vrfInput.hasher()
        hasher.update(seed)
        hasher.absorbBigEndian(epoch)
        hasher.absorbBigEndian(height)
        return hasher.finalize().bytes
    }

    /// The seed of `epoch + 1`: hashes the seed of `epoch` with the VRF outputs (betas) published during it, in
    /// block order. An empty list (an epoch without blocks) still gives a new seed, different for every epoch,
    /// so the chain never reuses a seed. Equivalent to feeding an ``Accumulator``.
    public static func next(seed: Bytes32, epoch: UInt64, outputs: [Bytes32]) -> Bytes32 {
        var accumulator = Accumulator(seed: seed, epoch: epoch)
        for output in outputs { accumulator.absorb(output) }
        return accumulator.finalize()
    }

    /// ``next(seed:epoch:outputs:)`` block by block, in constant memory: a gateway absorbs each committed block's
    /// output as it applies it and never keeps the list.
    ///
    /// Hashed message: `seed || epoch (8 bytes BE) || beta_0 || ... || beta_{n-1} || n (8 bytes BE)`. The outputs
    /// have a fixed width and their count closes the message, so one list cannot be read as another.
    public struct Accumulator: Sendable {
        private var hasher: SHA256
        /// Outputs absorbed so far.
        public private(set) var count: UInt64

        public init(seed: Bytes32, epoch: UInt64) {
            hasher = Domain.epochSeed.hasher()
            hasher.update(seed)
            hasher.absorbBigEndian(epoch)
            count = 0
        }

        public mutating func absorb(_ output: Bytes32) {
            hasher.update(output)
            count &+= 1
        }

        /// The seed of the next epoch; the accumulator stays usable (a copy is finalized).
        public func finalize() -> Bytes32 {
            var copy = hasher
            copy.absorbBigEndian(count)
            return copy.finalize()
        }
    }

    /// The proof a proposer publishes at `height`. The chain names a delegate by its x-only operator key, which
    /// stands for the point of that x with even y (BIP340), while ECVRF hashes the full compressed key. So the
    /// secret is first normalised to the one whose point has even y (negated when needed): the proof then
    /// verifies against `0x02 || operatorKey`, which a verifier rebuilds from the pool alone. Proving with the raw
    /// secret of an odd-y key would give a proof nobody holding only the x-only key could check.
    public static func prove(secretKey: PrivateKey, seed: Bytes32, epoch: UInt64, height: UInt64) -> [UInt8] {
        let alpha = vrfInput(seed: seed, epoch: epoch, height: height)
        if secretKey.publicKey.parityPrefix == 0x02 {
            return ECVRF.prove(secretKey: secretKey, alpha: alpha)
        }
        // A zero tweak is always valid (below n, and the secret is non-zero): this only negates.
        guard let even = try? secretKey.xOnlyTweakAdded(.zero) else {
            preconditionFailure("EpochSeed: negating a valid secret key failed")
        }
        return ECVRF.prove(secretKey: even, alpha: alpha)
    }

    /// The even-y public key ECVRF verifies against for an x-only operator key; nil if x is not on the curve.
    public static func vrfPublicKey(operatorKey: Bytes32) -> PublicKey? {
        var compressed = [UInt8](repeating: 0x02, count: 33)
        compressed.withUnsafeMutableBytes { operatorKey.store(into: $0, offset: 1) }
        return try? PublicKey(compressed: compressed)
    }

    /// The output (beta) of a block whose proposer has `operatorKey`, or nil when the proof does not verify for
    /// this seed, epoch and height. A verifier needs nothing but the pool, the published proofs and the seed.
    public static func verifiedOutput(
        operatorKey: Bytes32, seed: Bytes32, epoch: UInt64, height: UInt64, proof: [UInt8]
    ) -> Bytes32? {
        guard proof.count == ECVRF.proofLength, let key = vrfPublicKey(operatorKey: operatorKey) else { return nil }
        return ECVRF.verify(publicKey: key, alpha: vrfInput(seed: seed, epoch: epoch, height: height), pi: proof)
    }
}
