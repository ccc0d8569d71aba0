"""The notes example's API. Two apps over the same routes: ``notes_api.app`` verifies
Kizuna's tokens with ``kizuna-verifier`` (Kizuna runs as its own service) and
``notes_api.embedded`` embeds Kizuna's auth API in the same process."""
