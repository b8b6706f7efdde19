import AmarsCodec
import AmarsCrypto
import Foundation
import Ledger

/// The genesis document: chain id, first committee and the allocation of the whole supply (white paper §14).
///
/// Amounts are strings of base units in the JSON file because the big allocations exceed what a JSON
/// number keeps exactly in most parsers.
public struct Genesis: Equatable, Sendable {
    /// The allocation categories of SPEC.md and their fixed sizes. Each must be fully accounted for:
    /// allocated to addresses plus burned (unsold sale stages) equals the category.
    public enum Category: String, CaseIterable, Sendable {
        case reserveFund = "reserve-fund"
        case strategicPartners = "strategic-partners"
        case developmentTeam = "development-team"
        case marketingBounty = "marketing-bounty"
        case appUserIncentive = "app-user-incentive"
        case icoStage1 = "ico-stage-1"
        case icoStage2 = "ico-stage-2"
        case icoStage3 = "ico-stage-3"
        case icoStage4 = "ico-stage-4"

        public var amount: UInt64 {
            let billion: UInt64 = 1_000_000_000 * Amount.unitsPerAMSC
            switch self {
            case .reserveFund: return 91 * billion
            case .strategicPartners: return 9 * billion
            case .developmentTeam: return 15 * billion
            case .marketingBounty: return 5 * billion
            case .appUserIncentive: return 5 * billion
            case .icoStage1: return 68 * billion
            case .icoStage2: return 95 * billion
            case .icoStage3: return 138 * billion
            case .icoStage4: return 74 * billion
            }
        }

        public var title: String {
            switch self {
            case .reserveFund: "Reserve Fund"
            case .strategicPartners: "Strategic Partners"
            case .developmentTeam: "Development Team"
            case .marketingBounty: "Marketing & Bounty"
            case .appUserIncentive: "Incentive for App Users"
            case .icoStage1: "ICO stage 1"
            case .icoStage2: "ICO stage 2"
            case .icoStage3: "ICO stage 3"
            case .icoStage4: "ICO stage 4"
            }
        }

        public var isSaleStage: Bool { rawValue.hasPrefix("ico-") }
    }

    public struct Allocation: Equatable, Sendable {
        public var category: Category
        public var address: Address
        public var amount: UInt64

        public init(category: Category, address: Address, amount: UInt64) {
            self.category = category
            self.address = address
            self.amount = amount
        }
    }

    /// Staking and election rules of the chain (white paper §8).
    public struct StakingParameters: Equatable, Sendable, Codable {
        /// Base units a candidate must lock as self-stake to register and to be elected.
        public var minSelfStake: UInt64
        /// Epochs between an unstake and the withdrawal of its tokens.
        public var unbondingEpochs: UInt64
        /// Longest lock a bucket may declare.
        public var maxDurationEpochs: UInt32
        /// Candidates elected into the delegate pool of each epoch.
        public var poolSize: Int
        /// Members drawn by VRF from the pool into each epoch's committee.
        public var committeeSize: Int

        public init(
            minSelfStake: UInt64 = 10_000 * Amount.unitsPerAMSC, unbondingEpochs: UInt64 = 3,
            maxDurationEpochs: UInt32 = 8_760, poolSize: Int = 36, committeeSize: Int = 24
        ) {
            self.minSelfStake = minSelfStake
            self.unbondingEpochs = unbondingEpochs
            self.maxDurationEpochs = maxDurationEpochs
            self.poolSize = poolSize
            self.committeeSize = committeeSize
        }

        enum CodingKeys: String, CodingKey {
            case minSelfStake, unbondingEpochs, maxDurationEpochs, poolSize, committeeSize
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = StakingParameters()
            minSelfStake = try c.decodeIfPresent(UInt64.self, forKey: .minSelfStake) ?? d.minSelfStake
            unbondingEpochs = try c.decodeIfPresent(UInt64.self, forKey: .unbondingEpochs) ?? d.unbondingEpochs
            maxDurationEpochs = try c.decodeIfPresent(UInt32.self, forKey: .maxDurationEpochs) ?? d.maxDurationEpochs
            poolSize = try c.decodeIfPresent(Int.self, forKey: .poolSize) ?? d.poolSize
            committeeSize = try c.decodeIfPresent(Int.self, forKey: .committeeSize) ?? d.committeeSize
        }
    }

    /// A delegate candidate that exists from height 0, its self-stake locked out of its owner's allocation, so
    /// that a new chain has an elected pool (and a committee) before anyone sends a staking transaction.
    public struct GenesisCandidate: Equatable, Sendable {
        public var name: [UInt8]
        public var owner: Address
        public var operatorKey: Bytes32
        public var selfStake: UInt64
        public var durationEpochs: UInt32

        public init(name: [UInt8], owner: Address, operatorKey: Bytes32, selfStake: UInt64, durationEpochs: UInt32) {
            self.name = name
            self.owner = owner
            self.operatorKey = operatorKey
            self.selfStake = selfStake
            self.durationEpochs = durationEpochs
        }
    }

    public var chainID: UInt32
    public var chainName: String
    /// Milliseconds since the Unix epoch.
    public var timestamp: UInt64
    public var epochLength: UInt64
    /// The shortest time between two blocks (ms): gateways never produce faster, so an epoch lasts at least
    /// `epochLength · blockIntervalMillis` and the unbonding period at least ``unbondingMillis``.
    public var blockIntervalMillis: UInt64
    public var initialBaseFee: UInt64
    public var validators: [Committee.Member]
    public var allocations: [Allocation]
    /// Unsold tokens of each sale stage, burned at genesis (never minted into any account).
    public var burned: [Category: UInt64]
    public var staking: StakingParameters
    public var candidates: [GenesisCandidate]

    public init(
        chainID: UInt32, chainName: String, timestamp: UInt64, epochLength: UInt64,
        blockIntervalMillis: UInt64 = Genesis.defaultBlockIntervalMillis, initialBaseFee: UInt64,
        validators: [Committee.Member], allocations: [Allocation], burned: [Category: UInt64],
        staking: StakingParameters = StakingParameters(), candidates: [GenesisCandidate] = []
    ) {
        self.chainID = chainID
        self.chainName = chainName
        self.timestamp = timestamp
        self.epochLength = epochLength
        self.blockIntervalMillis = blockIntervalMillis
        self.initialBaseFee = initialBaseFee
        self.validators = validators
        self.allocations = allocations
        self.burned = burned
        self.staking = staking
        self.candidates = candidates
    }

    public enum ValidationError: Error, Equatable, CustomStringConvertible {
        case categoryMismatch(Category, allocated: UInt64, burned: UInt64)
        case burnOutsideSale(Category)
        case zeroAllocation(Category)
        case amountOverflow
        case noValidators
        case invalidValidator(String)
        case badEpochLength
        case badBlockInterval
        case badUnbonding
        case badBaseFee
        case badStaking(String)
        case badCandidate(String)

        public var description: String {
            switch self {
            case .categoryMismatch(let c, let a, let b):
                "\(c.rawValue): allocated \(Amount.grouped(a)) + burned \(Amount.grouped(b)) AMSC must equal "
                    + "\(Amount.grouped(c.amount)) AMSC"
            case .burnOutsideSale(let c): "\(c.rawValue): only ICO sale stages can burn unsold tokens"
            case .zeroAllocation(let c): "\(c.rawValue): an allocation of zero"
            case .amountOverflow: "amounts overflow"
            case .noValidators: "genesis needs at least one validator"
            case .invalidValidator(let why): "validator: \(why)"
            case .badEpochLength: "epochLength must be between 1 and 1,000,000 blocks"
            case .badBlockInterval: "blockInterval must be between 10 and 600,000 ms"
            case .badUnbonding:
                "staking.unbondingEpochs must be at least \(Genesis.minUnbondingEpochs), so that the devices' trusting "
                    + "period (two thirds of the unbonding period) spans more than an epoch, and fit 64-bit milliseconds"
            case .badBaseFee: "initialBaseFee must be at least the minimum base fee"
            case .badStaking(let why): "staking: \(why)"
            case .badCandidate(let why): "genesis candidate: \(why)"
            }
        }
    }

    /// Checks the allocation adds up to exactly the fixed supply, category by category.
    public func validate(fees: FeeSchedule = .standard) throws(ValidationError) {
        guard (1...1_000_000).contains(epochLength) else { throw .badEpochLength }
        guard (10...600_000).contains(blockIntervalMillis) else { throw .badBlockInterval }
        guard staking.unbondingEpochs >= Self.minUnbondingEpochs, unbondingMillis != nil else { throw .badUnbonding }
        guard initialBaseFee >= fees.minBaseFee, initialBaseFee <= fees.maxBaseFee else { throw .badBaseFee }
        guard !validators.isEmpty else { throw .noValidators }
        guard staking.minSelfStake > 0 else { throw .badStaking("minSelfStake must be positive") }
        guard (1...Caps.committeeMembers).contains(staking.poolSize) else {
            throw .badStaking("poolSize must be 1...\(Caps.committeeMembers)")
        }
        guard staking.maxDurationEpochs > 0 else { throw .badStaking("maxDurationEpochs must be positive") }
        guard (1...Caps.committeeMembers).contains(staking.committeeSize) else {
            throw .badStaking("committeeSize must be 1...\(Caps.committeeMembers)")
        }
        var names: Set<[UInt8]> = []
        var owners: Set<Address> = []
        for c in candidates {
            guard !c.name.isEmpty, c.name.count <= Caps.candidateNameBytes,
                c.name.allSatisfy(CandidateRegister.isNameByte),
                names.insert(c.name).inserted
            else { throw .badCandidate("name must be unique, 1-32 of a-z 0-9 -") }
            guard owners.insert(c.owner).inserted else { throw .badCandidate("one candidate per owner") }
            guard (try? XOnlyPublicKey(bytes: c.operatorKey)) != nil else { throw .badCandidate("operator key") }
            guard c.selfStake >= staking.minSelfStake else { throw .badCandidate("self-stake below minSelfStake") }
            guard c.durationEpochs <= staking.maxDurationEpochs else { throw .badCandidate("duration too long") }
            let owned = allocations.filter { $0.address == c.owner }.reduce(UInt64(0)) { $0 &+ $1.amount }
            guard owned >= c.selfStake else { throw .badCandidate("owner's allocation is smaller than its self-stake") }
        }
        do { _ = try Committee(epoch: 0, members: validators) } catch { throw .invalidValidator("\(error)") }
        for v in validators {
            do { _ = try XOnlyPublicKey(bytes: v.key) } catch { throw .invalidValidator("not a valid x-only key") }
        }
        for (category, amount) in burned where amount > 0 && !category.isSaleStage {
            throw .burnOutsideSale(category)
        }
        for category in Category.allCases {
            var allocated: UInt64 = 0
            for a in allocations where a.category == category {
                guard a.amount > 0 else { throw .zeroAllocation(category) }
                let (s, o) = allocated.addingReportingOverflow(a.amount)
                guard !o else { throw .amountOverflow }
                allocated = s
            }
            let burn = burned[category] ?? 0
            let (total, o) = allocated.addingReportingOverflow(burn)
            guard !o, total == category.amount else {
                throw .categoryMismatch(category, allocated: allocated, burned: burn)
            }
        }
    }

    /// The production parameters (SPEC "Light client"): hourly epochs of 1 s blocks and 21 days of unbonding, so
    /// a device trusts a committee for 14 days (`amars genesis new --epoch-length 3600 --unbonding-epochs 505`).
    /// The devnet's are short for demos: 60-block epochs and a day of unbonding, 16 hours of trust.
    public enum Production {
        public static let epochLength: UInt64 = 3600
        public static let blockIntervalMillis: UInt64 = 1000
        public static let unbondingEpochs: UInt64 = 505
        public static var unbondingMillis: UInt64 { (unbondingEpochs - 1) * epochLength * blockIntervalMillis }
        public static var trustingPeriodMillis: UInt64 { unbondingMillis / 3 * 2 }
    }

    /// Blocks come at most this often unless a genesis says otherwise (ms).
    public static let defaultBlockIntervalMillis: UInt64 = 1000
    /// The shortest unbonding a genesis may set: the trusting period, two thirds of two whole epochs, then spans
    /// more than one epoch.
    public static let minUnbondingEpochs: UInt64 = 3

    /// The shortest time a stake stays slashable after its owner unstakes (ms): an unstake at the last block of
    /// an epoch is withdrawable `unbondingEpochs` epochs on, so at least `unbondingEpochs - 1` whole epochs of at
    /// least `epochLength` blocks each, blocks at least ``blockIntervalMillis`` apart. Nil if it overflows.
    public var unbondingMillis: UInt64? {
        let (blocks, o1) = (staking.unbondingEpochs &- 1).multipliedReportingOverflow(by: epochLength)
        let (millis, o2) = blocks.multipliedReportingOverflow(by: blockIntervalMillis)
        return o1 || o2 ? nil : millis
    }

    /// How long a device may trust a committee it verified (ms), measured from its checkpoint's timestamp: two
    /// thirds of the unbonding period, so members who signed are still slashable for a fork they sign while a
    /// device may believe them (SPEC "Light client"; CometBFT uses the same margin). Past it a device refuses to
    /// follow the chain until it is re-anchored.
    public var trustingPeriodMillis: UInt64 {
        guard let unbonding = unbondingMillis else { return 0 }  // validate() refuses such a genesis
        return unbonding / 3 * 2
    }

    public var totalBurned: UInt64 { burned.values.reduce(0, +) }
    public var totalAllocated: UInt64 { allocations.reduce(0) { $0 + $1.amount } }

    /// State at height 0: balances (several allocations to one address add up), minus the self-stakes of
    /// the genesis candidates, which become candidates and stake buckets 1, 2, ... in order.
    public var initialState: StateChanges {
        var state = StateChanges()
        for a in allocations { state.accounts[a.address, default: AccountState()].balance += a.amount }
        for (i, c) in candidates.enumerated() {
            let id = UInt64(i + 1)
            state.accounts[c.owner, default: AccountState()].balance -= c.selfStake  // validate() checked it
            let bucket = BucketState(
                owner: c.owner, candidate: c.owner, amount: c.selfStake, durationEpochs: c.durationEpochs,
                autoStake: false, startEpoch: 0)
            let candidate = CandidateState(
                name: c.name, operatorKey: c.operatorKey, rewardAddress: c.owner, rewardShareBps: 0,
                selfStakeBucket: id, totalWeight: bucket.weight)
            state.objects[StakingRules.bucketKey(id)] = bucket.encoded
            state.objects[StakingRules.candidateKey(c.owner)] = candidate.encoded
            state.objects[StakingRules.nameKey(c.name)] = c.owner.raw.bytes
        }
        // The first committee is in the state like every later one, so evidence and light clients read committees
        // one way.
        state.objects[StakingRules.committeeKey(epoch: 0)] = committee(epoch: 0).encoded
        if !candidates.isEmpty {
            var w = ByteWriter(capacity: 10)
            w.writeVarint(UInt64(candidates.count + 1))
            state.objects[StakingRules.nextBucketKey] = w.bytes
        }
        return state
    }

    public func committee(epoch: UInt64) -> Committee {
        // validate() has checked the members.
        try! Committee(epoch: epoch, members: validators)
    }

    /// Canonical encoding of everything consensus depends on; its tagged hash identifies the chain's start.
    public var hash: Bytes32 {
        var w = ByteWriter(capacity: 1024)
        w.writeVarint(UInt64(chainID))
        w.writeLengthPrefixed(Array(chainName.utf8))
        w.writeVarint(timestamp)
        w.writeVarint(epochLength)
        w.writeVarint(blockIntervalMillis)
        w.writeVarint(initialBaseFee)
        w.write(list: validators)
        w.writeVarint(UInt64(allocations.count))
        for a in allocations {
            w.writeLengthPrefixed(Array(a.category.rawValue.utf8))
            w.write(a.address)
            w.writeVarint(a.amount)
        }
        for c in Category.allCases {
            w.writeVarint(burned[c] ?? 0)
        }
        w.writeVarint(staking.minSelfStake)
        w.writeVarint(staking.unbondingEpochs)
        w.writeVarint(UInt64(staking.maxDurationEpochs))
        w.writeVarint(UInt64(staking.poolSize))
        w.writeVarint(UInt64(staking.committeeSize))
        w.writeVarint(UInt64(candidates.count))
        for c in candidates {
            w.writeLengthPrefixed(c.name)
            w.write(c.owner)
            w.write(c.operatorKey)
            w.writeVarint(c.selfStake)
            w.writeVarint(UInt64(c.durationEpochs))
        }
        return Domain.genesis.hash(w.bytes)
    }
}

// MARK: - JSON file

extension Genesis {
    public enum FileError: Error, CustomStringConvertible {
        case unreadable(String)
        case malformed(String)
        case invalid(ValidationError)

        public var description: String {
            switch self {
            case .unreadable(let s): "cannot read genesis file: \(s)"
            case .malformed(let s): "genesis file is malformed: \(s)"
            case .invalid(let e): "genesis is invalid: \(e)"
            }
        }
    }

    private struct FileModel: Codable {
        struct Validator: Codable {
            var key: String
            var weight: UInt64
        }
        struct AllocationModel: Codable {
            var category: String
            var address: String
            var amount: String
        }
        var chainID: UInt32
        var chainName: String
        var timestamp: UInt64
        var epochLength: UInt64
        /// Optional in the file: absent means ``Genesis/defaultBlockIntervalMillis``.
        var blockInterval: UInt64?
        var initialBaseFee: UInt64
        var validators: [Validator]
        var allocations: [AllocationModel]
        var burned: [String: String]
        /// Optional in the file: absent means the defaults.
        var staking: StakingParameters?
        struct CandidateModel: Codable {
            var name: String
            var owner: String
            var operatorKey: String
            var selfStake: String
            var durationEpochs: UInt32
        }
        var candidates: [CandidateModel]?
    }

    public func jsonData() -> Data {
        let model = FileModel(
            chainID: chainID, chainName: chainName, timestamp: timestamp, epochLength: epochLength,
            blockInterval: blockIntervalMillis, initialBaseFee: initialBaseFee,
            validators: validators.map { .init(key: Hex.encode($0.key.bytes), weight: $0.weight) },
            allocations: allocations.map {
                .init(category: $0.category.rawValue, address: $0.address.bech32, amount: String($0.amount))
            },
            burned: Dictionary(
                uniqueKeysWithValues: burned.filter { $0.value > 0 }.map { ($0.key.rawValue, String($0.value)) }),
            staking: staking,
            candidates: candidates.map {
                .init(
                    name: String(decoding: $0.name, as: UTF8.self), owner: $0.owner.bech32,
                    operatorKey: Hex.encode($0.operatorKey.bytes), selfStake: String($0.selfStake),
                    durationEpochs: $0.durationEpochs)
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return (try? encoder.encode(model)) ?? Data()
    }

    public init(jsonData data: Data) throws(FileError) {
        let model: FileModel
        do { model = try JSONDecoder().decode(FileModel.self, from: data) } catch {
            throw .malformed(Self.describe(error))
        }
        var validators: [Committee.Member] = []
        for v in model.validators {
            guard let bytes = try? Hex.decode(v.key), let key = Bytes32(bytes) else {
                throw .malformed("validator key must be 32 bytes of hex")
            }
            validators.append(.init(key: key, weight: v.weight))
        }
        var allocations: [Allocation] = []
        for a in model.allocations {
            guard let category = Category(rawValue: a.category) else {
                throw .malformed("unknown category \(a.category)")
            }
            guard let address = try? Address(bech32: a.address) else { throw .malformed("bad address \(a.address)") }
            guard let amount = UInt64(a.amount) else { throw .malformed("bad amount \(a.amount)") }
            allocations.append(.init(category: category, address: address, amount: amount))
        }
        var burned: [Category: UInt64] = [:]
        for (name, text) in model.burned {
            guard let category = Category(rawValue: name) else { throw .malformed("unknown category \(name)") }
            guard let amount = UInt64(text) else { throw .malformed("bad burned amount \(text)") }
            burned[category] = amount
        }
        self.init(
            chainID: model.chainID, chainName: model.chainName, timestamp: model.timestamp,
            epochLength: model.epochLength, blockIntervalMillis: model.blockInterval ?? Self.defaultBlockIntervalMillis,
            initialBaseFee: model.initialBaseFee, validators: validators,
            allocations: allocations, burned: burned, staking: model.staking ?? StakingParameters(),
            candidates: try Self.candidates(model.candidates ?? []))
        do { try validate() } catch { throw .invalid(error) }
    }

    private static func candidates(_ models: [FileModel.CandidateModel]) throws(FileError) -> [GenesisCandidate] {
        var out: [GenesisCandidate] = []
        for m in models {
            guard let owner = try? Address(bech32: m.owner) else { throw .malformed("bad candidate owner \(m.owner)") }
            guard let bytes = try? Hex.decode(m.operatorKey), let key = Bytes32(bytes) else {
                throw .malformed("candidate operatorKey must be 32 bytes of hex")
            }
            guard let stake = UInt64(m.selfStake) else { throw .malformed("bad candidate selfStake \(m.selfStake)") }
            out.append(
                GenesisCandidate(
                    name: Array(m.name.utf8), owner: owner, operatorKey: key, selfStake: stake,
                    durationEpochs: m.durationEpochs))
        }
        return out
    }

    public static func load(path: String) throws(FileError) -> Genesis {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable("\(path): \(error.localizedDescription)")
        }
        return try Genesis(jsonData: data)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at '\(ctx.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let ctx): return "not valid JSON (\(ctx.debugDescription))"
        default: return "\(error)"
        }
    }
}
