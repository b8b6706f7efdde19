import AmarsClient
import AmarsCodec
import AmarsCrypto
import ArgumentParser
import Chain
import Foundation
import Ledger

// MARK: - shared staking plumbing

/// What every staking command does around its payload: check it against the node's current state with the
/// chain's own rules (so a doomed transaction is refused here, with the rule, before it costs anything),
/// send it, and with --wait tell whether it landed or was dropped by the block builder, and why.
struct StakingOptions: ParsableArguments {
    @Option(help: "Secret key file of the sender (the staker or the candidate's owner).")
    var key: String

    @Flag(
        help: ArgumentHelp(
            "Send even when the node's current state says a staking rule refuses it (the block builder then drops it).",
            visibility: .hidden))
    var skipCheck = false

    @OptionGroup var send: SendOptions

    @OptionGroup var node: NodeOptions

    /// Runs `payload` through ``StakingRules`` against the candidates and the named bucket as the node reports
    /// them, at the epoch of the next block. Returns the rule it breaks, if any.
    func check(_ payload: TransactionPayload, sender: Address, bucket: UInt64? = nil) throws -> StakingError? {
        let overview = try node.typed { try $0.staking() }
        let candidates = try node.typed { try $0.candidates() }
        var objects: [ObjectKey: [UInt8]] = [:]
        for c in candidates {
            objects[StakingRules.candidateKey(c.owner)] = c.state.encoded
            objects[StakingRules.nameKey(c.state.name)] = c.owner.raw.bytes
        }
        if let bucket {
            do {
                let b = try NodeClient(baseURL: node.node).bucket(bucket)
                objects[StakingRules.bucketKey(bucket)] = b.state.encoded
            } catch  where error.code == "notFound" {
                // Absent: the rules say unknownBucket.
            } catch {
                throw CLIError("\(error)")
            }
        }
        let rules = StakingRules(
            parameters: .init(
                minSelfStake: overview.minSelfStake, unbondingEpochs: overview.unbondingEpochs,
                maxDurationEpochs: overview.maxDurationEpochs, poolSize: overview.poolSize))
        let state = StateOverlay(base: WorldState(StateChanges(objects: objects)))
        do {
            _ = try rules.plan(payload, sender: sender, state: state, epoch: overview.nextBlockEpoch)
            return nil
        } catch {
            return error
        }
    }

    /// Checks, sends, and (with --wait) waits. `what` names the action in messages; `done` prints what the
    /// included transaction created.
    func submit(
        _ payload: TransactionPayload, what: String, bucket: UInt64? = nil, done: (Address) throws -> Void = { _ in }
    ) throws {
        let signer = try loadKey(key)
        let sender = Address(publicKey: signer.xOnlyPublicKey)
        if !skipCheck, let broken = try check(payload, sender: sender, bucket: bucket) {
            throw CLIError(
                "refused before sending (\(broken.code)): \(explain(broken, sender: sender)); nothing was sent")
        }
        let sent = try send.send(payload, signer: signer, node: node)
        print("sent \(what) from \(sender.bech32)")
        print("transaction \(sent.id) (nonce \(sent.nonce))")
        guard send.wait else {
            print("add --wait to wait for it; check with: amars tx \(sent.id)")
            return
        }
        switch try send.waitForInclusion(sent, node: node) {
        case .included(let height, let fee):
            print("final in block \(height) (fee \(fee) units)")
            try done(sender)
        case .dropped:
            var why = "a staking rule refused it when the block was built"
            if let broken = try? check(payload, sender: sender, bucket: bucket) {
                why = "\(broken.code): \(explain(broken, sender: sender))"
            }
            throw CLIError(
                "not included: transaction \(sent.id) was dropped from the block (\(why)); nothing changed. "
                    + "Check: amars buckets \(sender.bech32) / amars candidate list")
        }
    }
}

/// The rule in words, with what to do next (the node's API uses the same codes).
func explain(_ error: StakingError, sender: Address) -> String {
    switch error {
    case .alreadyCandidate: "\(sender.bech32) is already a candidate; change it with 'amars candidate update'"
    case .nameTaken: "another candidate has this name; pick another --name (see 'amars candidate list')"
    case .notACandidate: "that address is not a registered candidate; see 'amars candidate list'"
    case .candidateEjected: "the candidate was ejected for double signing; stake with another one"
    case .invalidOperatorKey: "the operator key is not a valid x-only public key"
    case .selfStakeTooLow(let min):
        "self-stake must be at least \(Amount.format(min)) AMSC (\(min) units); raise --self-stake"
    case .durationTooLong(let max): "a bucket can be locked for at most \(max) epochs; lower --duration"
    case .durationShortened(let remaining):
        "the new --duration must cover the \(remaining) epochs the bucket is still locked"
    case .unknownBucket(let id): "there is no stake bucket \(id); list yours with 'amars buckets \(sender.bech32)'"
    case .notBucketOwner: "the bucket belongs to another address; list yours with 'amars buckets \(sender.bech32)'"
    case .alreadyUnstaked: "the bucket is already unstaked; withdraw it once unbonding ends"
    case .stillLocked(let epoch):
        epoch == UInt64.max
            ? "the bucket is auto-staking; restake it without --auto-stake first, then unstake when the lock ends"
            : "the bucket is locked until epoch \(epoch)"
    case .selfStakeBucket: "a candidate's own self-stake bucket cannot be unstaked"
    case .notUnstaked: "unstake the bucket ('amars unstake') before withdrawing it"
    case .unbonding(let epoch): "the bucket is unbonding; it can be withdrawn from epoch \(epoch)"
    case .invalidEvidence: "the evidence is not two conflicting, validly signed votes of one committee member"
    case .evidenceAlreadyUsed: "this double-sign was already reported"
    }
}

func parseAmount(_ text: String, flag: String) throws -> UInt64 {
    do { return try Amount.parse(text) } catch { throw CLIError("\(flag): \(error)") }
}

/// "10" or "12.5" percent → basis points.
func parseShare(_ text: String) throws -> UInt16 {
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    let digits = { (s: Substring) in !s.isEmpty && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
    guard parts.count >= 1, digits(parts[0]), parts[0].count <= 3,
        parts.count == 1 || (digits(parts[1]) && parts[1].count <= 2), let whole = UInt16(parts[0])
    else { throw CLIError("--reward-share is a percentage from 0 to 100 with at most 2 decimals, like 10 or 12.5") }
    let frac = parts.count == 2 ? UInt16(parts[1].padding(toLength: 2, withPad: "0", startingAt: 0))! : 0
    let bps = whole * 100 + frac
    guard bps <= 10_000 else { throw CLIError("--reward-share cannot exceed 100 (percent)") }
    return bps
}

/// Basis points as a percentage: 1000 → "10%", 1250 → "12.5%".
func percent(_ bps: UInt16) -> String {
    let frac = bps % 100
    guard frac != 0 else { return "\(bps / 100)%" }
    var digits = frac < 10 ? "0\(frac)" : "\(frac)"
    if digits.hasSuffix("0") { digits.removeLast() }
    return "\(bps / 100).\(digits)%"
}

/// An operator key from 64 hex digits or from a secret key file (its public key; the secret is not used).
func parseOperatorKey(hex: String?, file: String?) throws -> Bytes32? {
    switch (hex, file) {
    case (nil, nil): return nil
    case (.some, .some): throw CLIError("give --operator-key or --operator-key-file, not both")
    case (let hex?, nil):
        guard let bytes = try? Hex.decode(hex), let raw = Bytes32(bytes), (try? XOnlyPublicKey(bytes: raw)) != nil
        else {
            throw CLIError("--operator-key must be 64 hex digits of a valid x-only public key")
        }
        return raw
    case (nil, let file?):
        return try loadKey(file).xOnlyPublicKey.bytes
    }
}

func parseBucketID(_ text: String) throws -> UInt64 {
    guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let id = UInt64(text) else {
        throw CLIError("a bucket id is a whole number (see 'amars buckets ADDRESS')")
    }
    return id
}

// MARK: - candidates

struct CandidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "candidate",
        abstract: "Register, update and list delegate candidates.",
        discussion: """
            A candidate is an address that asks token holders for votes. It locks a self-stake (at least the \
            chain's minimum, see 'amars candidate list') and names an operator key: the key its node signs \
            blocks with. The top candidates by vote weight, measured in the middle of each epoch, form the \
            delegate pool of the next epoch; each epoch's committee is drawn from that pool.
            """,
        subcommands: [Register.self, Update.self, List.self])

    struct Register: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register the key's address as a candidate, locking its self-stake.",
            discussion: """
                Example on a devnet ('make devnet'; its genesis candidate validator-1 keeps finalizing):
                  amars key new --out data/keys/my-node-operator.key   # its amarsd then needs AMARS_PASSPHRASE_FILE
                  amars candidate register --key data/keys/strategic-partners.key --name my-node \\
                    --operator-key-file data/keys/my-node-operator.key --self-stake 10000 --duration 30 \\
                    --reward-share 10 --wait

                The self-stake becomes a stake bucket of the candidate; 'amars buckets ADDRESS' shows its id. \
                The operator key must be the key of a node that will sign blocks when the candidate is drawn \
                into a committee.
                """)

        @Option(help: "Candidate name: lowercase letters, digits and '-', unique on the chain.")
        var name: String

        @Option(help: "Operator (block signing) public key, 64 hex digits.")
        var operatorKey: String?

        @Option(help: "Secret key file whose public key is the operator key (e.g. data/keys/validator.key).")
        var operatorKeyFile: String?

        @Option(help: "Self-stake in AMSC (at least the chain's minimum).")
        var selfStake: String

        @Option(help: "Epochs the self-stake stays locked (longer locks weigh more: +0.1% per epoch, up to +50%).")
        var duration: UInt32

        @Option(help: "Percent of the delegate's rewards passed on to its voters, 0 to 100, e.g. 10 or 12.5.")
        var rewardShare: String

        @Option(help: "Address that receives the candidate's rewards (default: the key's own address).")
        var rewardAddress: String?

        @OptionGroup var staking: StakingOptions

        func run() throws {
            let nameBytes = Array(name.utf8)
            guard !nameBytes.isEmpty, nameBytes.count <= Caps.candidateNameBytes,
                nameBytes.allSatisfy(CandidateRegister.isNameByte)
            else {
                throw CLIError(
                    "--name must be 1 to \(Caps.candidateNameBytes) lowercase letters, digits or '-', like my-node")
            }
            guard let opKey = try parseOperatorKey(hex: operatorKey, file: operatorKeyFile) else {
                throw CLIError("give the operator key: --operator-key HEX or --operator-key-file FILE")
            }
            let amount = try parseAmount(selfStake, flag: "--self-stake")
            let share = try parseShare(rewardShare)
            let signer = try loadKey(staking.key)
            let reward = try rewardAddress.map(parseAddress) ?? Address(publicKey: signer.xOnlyPublicKey)
            let payload = TransactionPayload.candidateRegister(
                CandidateRegister(
                    name: nameBytes, operatorKey: opKey, rewardAddress: reward, selfStake: amount,
                    durationEpochs: duration, rewardShareBps: share))
            try staking.submit(
                payload, what: "registration of candidate \(name) (self-stake \(Amount.format(amount)) AMSC)"
            ) {
                owner in
                let c = try staking.node.typed { try $0.candidate(owner) }
                print(
                    "candidate \(c.name) registered: owner \(owner.bech32), self-stake bucket \(c.state.selfStakeBucket)"
                )
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a candidate's operator key, reward address or reward share.",
            discussion:
                "Only the flags you give change. Example: amars candidate update --key F --reward-share 15 --wait")

        @Option(help: "New operator (block signing) public key, 64 hex digits.")
        var operatorKey: String?

        @Option(help: "Secret key file whose public key becomes the operator key.")
        var operatorKeyFile: String?

        @Option(help: "New reward address.")
        var rewardAddress: String?

        @Option(help: "New percent of rewards passed on to voters, 0 to 100.")
        var rewardShare: String?

        @OptionGroup var staking: StakingOptions

        func run() throws {
            let update = CandidateUpdate(
                operatorKey: try parseOperatorKey(hex: operatorKey, file: operatorKeyFile),
                rewardAddress: try rewardAddress.map(parseAddress), rewardShareBps: try rewardShare.map(parseShare))
            guard update.operatorKey != nil || update.rewardAddress != nil || update.rewardShareBps != nil else {
                throw CLIError("nothing to update: give --operator-key(-file), --reward-address or --reward-share")
            }
            try staking.submit(.candidateUpdate(update), what: "candidate update") { owner in
                let c = try staking.node.typed { try $0.candidate(owner) }
                print(
                    "candidate \(c.name): operator key \(Hex.encode(c.state.operatorKey.bytes)), rewards to "
                        + "\(c.state.rewardAddress.bech32), voters' share \(percent(c.state.rewardShareBps))")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the candidates by vote weight, and the chain's staking rules.")

        @OptionGroup var node: NodeOptions

        func run() throws {
            let overview = try node.typed { try $0.staking() }
            let list = try node.typed { try $0.candidates() }
            print(
                "epoch \(overview.headEpoch) (\(overview.epochLength) blocks each); minimum self-stake "
                    + "\(Amount.format(overview.minSelfStake)) AMSC; longest lock \(overview.maxDurationEpochs) epochs; "
                    + "unbonding \(overview.unbondingEpochs) epochs; pool of \(overview.poolSize)")
            guard !list.isEmpty else {
                print("no candidates yet; register one with 'amars candidate register --help'")
                return
            }
            func pad(_ s: String, _ n: Int) -> String {
                s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0)
            }
            print(
                pad("name", 20) + pad("owner", 46) + pad("weight (AMSC)", 22) + pad("share", 8) + pad("self", 6)
                    + "status")
            for c in list {
                let status = c.state.ejected ? "ejected" : c.inPool ? "in pool" : "-"
                print(
                    pad(c.name, 20) + pad(c.owner.bech32, 46) + pad(Amount.format(c.state.totalWeight), 22)
                        + pad(percent(c.state.rewardShareBps), 8) + pad("#\(c.state.selfStakeBucket)", 6)
                        + status)
            }
        }
    }
}

// MARK: - buckets

struct StakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stake",
        abstract: "Lock AMSC in a new stake bucket that votes for a candidate.",
        discussion: """
            The tokens stay yours but are locked for --duration epochs; longer locks weigh more (+0.1% per \
            epoch, up to +50%), and --auto-stake (+10%) keeps the lock from running down until you restake \
            without it. Afterwards 'amars buckets ADDRESS' shows the bucket id; 'amars unstake' once the lock \
            ends, then 'amars withdraw' after the unbonding period.

            Example: amars stake --key data/keys/alice.key --candidate my-node --amount 100 --duration 30 --wait
            """)

    @Option(help: "The candidate: its amsc1... address or its name.")
    var candidate: String

    @Option(help: "Amount in AMSC, e.g. 100 or 0.5.")
    var amount: String

    @Option(help: "Epochs the bucket stays locked.")
    var duration: UInt32

    @Flag(help: "Keep the lock from running down (more weight; restake without it to start the countdown).")
    var autoStake = false

    @OptionGroup var staking: StakingOptions

    func run() throws {
        let units = try parseAmount(amount, flag: "--amount")
        let target: Address
        if candidate.hasPrefix("amsc1") {
            target = try parseAddress(candidate)
        } else {
            let list = try staking.node.typed { try $0.candidates() }
            guard let c = list.first(where: { $0.name == candidate }) else {
                throw CLIError("no candidate is named '\(candidate)'; see 'amars candidate list'")
            }
            target = c.owner
        }
        let payload = TransactionPayload.stake(
            Stake(candidate: target, amount: units, durationEpochs: duration, autoStake: autoStake))
        try staking.submit(payload, what: "stake of \(Amount.format(units)) AMSC for \(target.bech32)") { owner in
            let mine = try staking.node.typed { try $0.buckets(owner: owner) }
            if let b = mine.last(where: { $0.state.candidate == target && $0.state.amount == units }) {
                print(
                    "bucket \(b.id): \(Amount.format(units)) AMSC for \(target.bech32), weight \(Amount.format(b.state.weight))"
                )
            }
        }
    }
}

struct RestakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restake",
        abstract: "Renew a bucket's lock with a new duration (at least what is still locked) or auto-stake setting.",
        discussion: "Example: amars restake --key data/keys/alice.key --bucket 3 --duration 60 --wait")

    @Option(help: "Bucket id (see 'amars buckets ADDRESS').")
    var bucket: String

    @Option(help: "New lock duration in epochs, counted from now.")
    var duration: UInt32

    @Flag(help: "Keep the lock from running down; leave it out to start the countdown.")
    var autoStake = false

    @OptionGroup var staking: StakingOptions

    func run() throws {
        let id = try parseBucketID(bucket)
        let payload = TransactionPayload.restake(Restake(bucket: id, durationEpochs: duration, autoStake: autoStake))
        try staking.submit(payload, what: "restake of bucket \(id)", bucket: id) { _ in
            let b = try staking.node.typed { try $0.bucket(id) }
            print(
                "bucket \(id): locked \(b.state.durationEpochs) epochs from epoch \(b.state.startEpoch)"
                    + (b.state.autoStake ? ", auto-staking" : " (until epoch \(b.state.lockEndEpoch))"))
        }
    }
}

struct UnstakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unstake",
        abstract: "Stop a bucket's vote once its lock has ended; the tokens unbond, then 'amars withdraw' them.",
        discussion: "Example: amars unstake --key data/keys/alice.key --bucket 3 --wait")

    @Option(help: "Bucket id (see 'amars buckets ADDRESS').")
    var bucket: String

    @OptionGroup var staking: StakingOptions

    func run() throws {
        let id = try parseBucketID(bucket)
        try staking.submit(.unstake(BucketAction(bucket: id)), what: "unstake of bucket \(id)", bucket: id) { _ in
            let b = try staking.node.typed { try $0.bucket(id) }
            print("bucket \(id) unstaked; withdraw it from epoch \(b.withdrawableFromEpoch.map(String.init) ?? "?")")
        }
    }
}

struct WithdrawCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "withdraw",
        abstract: "Return an unstaked bucket's tokens to your balance after the unbonding period.",
        discussion: "Example: amars withdraw --key data/keys/alice.key --bucket 3 --wait")

    @Option(help: "Bucket id (see 'amars buckets ADDRESS').")
    var bucket: String

    @OptionGroup var staking: StakingOptions

    func run() throws {
        let id = try parseBucketID(bucket)
        try staking.submit(.withdraw(BucketAction(bucket: id)), what: "withdrawal of bucket \(id)", bucket: id) {
            owner in
            let a = try staking.node.typed { try $0.account(owner) }
            print("bucket \(id) withdrawn; balance \(Amount.format(a.balance)) AMSC")
        }
    }
}

struct BucketsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buckets", abstract: "List the stake buckets an address owns, with their lock status.")

    @Argument(help: "The owner's amsc1... address.")
    var address: String

    @OptionGroup var node: NodeOptions

    func run() throws {
        let owner = try parseAddress(address)
        let overview = try node.typed { try $0.staking() }
        let list = try node.typed { try $0.buckets(owner: owner) }
        guard !list.isEmpty else {
            print("\(owner.bech32) has no stake buckets; create one with 'amars stake --help'")
            return
        }
        let epoch = overview.nextBlockEpoch
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
        print(
            pad("id", 6) + pad("candidate", 46) + pad("amount (AMSC)", 20) + pad("weight", 20)
                + "status (now epoch \(epoch))")
        for b in list {
            let s = b.state
            let status: String
            if let unstaked = s.unstakedEpoch {
                let ready = unstaked + overview.unbondingEpochs
                status = epoch >= ready ? "withdrawable" : "unbonding until epoch \(ready)"
            } else if s.autoStake {
                status = "auto-staking, \(s.durationEpochs) epochs"
            } else if s.lockEndEpoch > epoch {
                status = "locked until epoch \(s.lockEndEpoch)"
            } else {
                status = "lock ended; can unstake"
            }
            print(
                pad("\(b.id)", 6) + pad(s.candidate.bech32, 46) + pad(Amount.format(s.amount), 20)
                    + pad(Amount.format(s.weight), 20) + status)
        }
    }
}

// MARK: - committee and checkpoints

struct CommitteeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "committee", abstract: "Show the committee that finalizes blocks in an epoch.")

    @Option(help: "Epoch (default: the head's).")
    var epoch: UInt64?

    @OptionGroup var node: NodeOptions

    func run() throws {
        let info = try node.typed { try $0.committee(epoch: epoch) }
        let c = info.committee
        print("committee of epoch \(c.epoch): \(c.members.count) member(s), total weight \(c.totalWeight)")
        print("hash \(Hex.encode(c.hash.bytes)) (named by block \(info.namedAtHeight))")
        print("source: \(info.source)")
        for (i, m) in c.members.enumerated() {
            let address = (try? XOnlyPublicKey(bytes: m.key)).map { Address(publicKey: $0).bech32 } ?? "?"
            print("  \(i)  \(Hex.encode(m.key.bytes))  \(address)  weight \(m.weight)")
        }
    }
}

struct CheckpointsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoints",
        abstract: "Show the epoch checkpoint chain a light client follows.",
        discussion: """
            The last block of each epoch names the next epoch's committee and is finalized by the current \
            one; a light client checks each link and then trusts the next committee.
            """)

    @Option(help: "First epoch to show.")
    var from: UInt64 = 0

    @Option(help: "How many checkpoints (at most 256).")
    var limit: Int = 16

    @OptionGroup var node: NodeOptions

    func run() throws {
        guard (1...256).contains(limit) else { throw CLIError("--limit is from 1 to 256") }
        let list = try node.typed { try $0.checkpoints(from: from, limit: limit) }
        guard !list.isEmpty else {
            let overview = try node.typed { try $0.staking() }
            print(
                "no checkpoint from epoch \(from) yet: the head is at height \(overview.headHeight), epoch "
                    + "\(overview.headEpoch); epochs are \(overview.epochLength) blocks")
            return
        }
        for cp in list {
            let h = cp.header
            print(
                "epoch \(h.epoch)  height \(h.height)  hash \(Hex.encode(h.hash.bytes))  next committee "
                    + "\(Hex.encode(cp.nextCommittee.hash.bytes).prefix(16))… (\(cp.nextCommittee.members.count) "
                    + "member(s))  \(cp.certificate.signatures.count) signature(s)")
        }
    }
}

// MARK: - evidence

struct EvidenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence", abstract: "Report a committee member's double sign.", subcommands: [Submit.self])

    struct Submit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit two conflicting votes of one member: it is ejected and half its self-stake is yours.",
            discussion: """
                Gateways report the double signs they see themselves. This is for anyone else who holds two votes
                of one committee member for different blocks at the same height, round and step, each hex-encoded
                as a gateway logs them ('double sign seen', first and second).

                  amars evidence submit --key data/keys/alice.key --first <hex vote> --second <hex vote> --wait
                """)

        @Option(help: "One vote, hex-encoded.")
        var first: String

        @Option(help: "The conflicting vote, hex-encoded.")
        var second: String

        @OptionGroup var staking: StakingOptions

        func run() throws {
            let a = try parseVote(first, flag: "--first")
            let b = try parseVote(second, flag: "--second")
            let evidence = DoubleSignEvidence(
                first: a.blockHash < b.blockHash ? a : b, second: a.blockHash < b.blockHash ? b : a)
            guard evidence.isConflicting else {
                throw CLIError(
                    "not a double sign: the votes must be one member's, for different blocks at one height, round "
                        + "and step; nothing was sent")
            }
            let genesis = try NodeOptions.genesisBlockHash(in: try staking.node.get("/v1/head"))
            guard a.verifySignature(genesis: genesis), b.verifySignature(genesis: genesis) else {
                throw CLIError("a vote's signature does not verify on this node's chain; nothing was sent")
            }
            let signer = try loadKey(staking.key)
            let sent = try staking.send.send(.doubleSignEvidence(evidence), signer: signer, node: staking.node)
            print("sent evidence against \(Hex.encode(a.voter.bytes)) at height \(a.height), round \(a.round)")
            print("transaction \(sent.id) (nonce \(sent.nonce))")
            guard staking.send.wait else { return print("check with: amars tx \(sent.id)") }
            switch try staking.send.waitForInclusion(sent, node: staking.node) {
            case .included(let height, let fee): print("final in block \(height) (fee \(fee) units)")
            case .dropped:
                throw CLIError("not included: the block builder dropped it (already reported, or not a member)")
            }
        }

        private func parseVote(_ text: String, flag: String) throws -> Vote {
            guard let bytes = try? Hex.decode(text), let vote = try? Vote(decoding: bytes) else {
                throw CLIError("\(flag) is not a hex-encoded vote")
            }
            return vote
        }
    }
}
