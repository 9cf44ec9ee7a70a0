"""Scanner: checking tickets in at the door with signed codes that verify offline."""
