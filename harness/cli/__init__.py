"""The top floor: ``colab-ci``'s verbs, one module each; they parse arguments and call the stages."""
