"""Recipes: whole runs built from the library's parts, above :mod:`mmssl.train` and :mod:`mmssl.eval`.

* :mod:`~mmssl.recipes.dual_encoder`: train a dual encoder (image-text or code) end to end;
* :mod:`~mmssl.recipes.pretext`: pretrain a tower with a pretext task (:mod:`mmssl.pretext`);
* :mod:`~mmssl.recipes.contrastive`: pretrain a tower with a contrastive method (:mod:`mmssl.contrastive`);
* :mod:`~mmssl.recipes.pretrain_protocol`: judge a pretrained tower (frozen-feature probes, and the
  dual-encoder recipe started from it vs from scratch).

Nothing is imported here, so ``import mmssl.recipes.pretext`` loads only what that recipe needs.
"""
