/// LightClient: see the module's types.
enum LightClientModule {}
