/// Consensus: see the module's types.
enum ConsensusModule {}
