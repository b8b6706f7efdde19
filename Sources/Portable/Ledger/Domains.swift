import AmarsCrypto

/// Every hashed object gets its own BIP340-style tag, so a hash of one kind can never be replayed as another
/// (a transaction id as a block hash, a vote as a checkpoint). The strings are consensus: never change them.
public enum Domain {
    public static let transaction = TaggedHash(tag: "AmarsTx")
    public static let header = TaggedHash(tag: "AmarsHeader")
    public static let vote = TaggedHash(tag: "AmarsVote")
    public static let committee = TaggedHash(tag: "AmarsCommittee")
    public static let address = TaggedHash(tag: "AmarsAddress")
    public static let receipt = TaggedHash(tag: "AmarsReceipt")
    public static let stateKey = TaggedHash(tag: "AmarsStateKey")
    public static let stateValue = TaggedHash(tag: "AmarsStateValue")
    public static let genesis = TaggedHash(tag: "AmarsGenesis")
    public static let objectID = TaggedHash(tag: "AmarsObjectID")
    public static let escrowClose = TaggedHash(tag: "AmarsEscrowClose")
    /// An operator's re-anchor statement over a checkpoint header (``ReanchorPayload`` in DeviceProtocol).
    public static let reanchor = TaggedHash(tag: "AmarsReanchor")
    /// An epoch's recipient filter bytes (``RecipientFilter``), as the state records them.
    public static let recipientFilter = TaggedHash(tag: "AmarsRecipientFilter")
    /// The SipHash key of an epoch's recipient filter, from the genesis hash and the epoch.
    public static let recipientFilterKey = TaggedHash(tag: "AmarsRecipientFilterKey")
    /// An epoch's stealth announcements (``StealthAnnouncements``), as the state records them.
    public static let stealthAnnouncements = TaggedHash(tag: "AmarsStealthAnnouncements")
    /// What a channel's sender signs off chain (``ChannelUpdate``).
    public static let channelUpdate = TaggedHash(tag: "AmarsChannelUpdate")
    /// A channel's recipient asking a gateway's channel door for its messages (``ChannelUpdate/readHash``).
    public static let channelRead = TaggedHash(tag: "AmarsChannelRead")
}

/// Caps on every length the chain decodes. They bound memory on a device and on a gateway alike; raising one
/// is a protocol change.
public enum Caps {
    public static let memoBytes = 64
    public static let candidateNameBytes = 32
    public static let certificateBytes = 1024
    /// Pending conditions in one channel update, and preimages in one close.
    public static let channelConditions = 8
    public static let committeeMembers = 128
    public static let transactionsPerBlock = 20_000
    public static let transactionBytes = 2048
    public static let blockBytes = 8 << 20
}
