"""keras-hub models from small configs (never a preset, no network), with probe data.

Each builder returns a freshly built model with seeded random weights;
`probe_data(model)` gives inputs that fit it. Used by tests/test_keras_hub.py.
"""

import numpy as np

VOCAB = 20
SEQ = 8
IMAGE = (32, 32, 3)

# A byte-pair vocabulary small enough to write down, for GPT2's tokenizer.
GPT2_VOCAB = {
    "<|endoftext|>": 0, "a": 1, "Ġquick": 2, "Ġfox": 3, "Ġa": 4, "Ġ": 5, "q": 6, "u": 7,
    "i": 8, "c": 9, "k": 10, "f": 11, "o": 12, "x": 13, "ui": 14, "ck": 15, "uick": 16,
    "Ġq": 17, "Ġf": 18, "ox": 19,
}
GPT2_MERGES = ["Ġ q", "u i", "c k", "ui ck", "Ġq uick", "Ġ f", "o x", "Ġf ox", "Ġ a"]
BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox",
              "jumps", "over", "lazy", "dog", "a", "cat", "sat", "on", "mat", "runs", "fast"]


def bert():
    import keras_hub

    return keras_hub.models.BertBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=SEQ,
    )


def gpt2():
    import keras_hub

    return keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=16,
    )


def llama():
    import keras_hub

    return keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=8, intermediate_dim=16,
    )


def gemma():
    import keras_hub

    return keras_hub.models.GemmaBackbone(
        vocabulary_size=VOCAB, num_layers=2, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=8, intermediate_dim=16, head_dim=4,
    )


def vit():
    import keras_hub

    return keras_hub.models.ViTBackbone(
        image_shape=IMAGE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16,
    )


def deit():
    import keras_hub

    return keras_hub.models.DeiTBackbone(
        image_shape=IMAGE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16,
    )


def resnet():
    import keras_hub

    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=IMAGE,
    )


def mobilenet():
    import keras_hub

    return keras_hub.models.MobileNetBackbone(
        stackwise_expansion=[[16], [24, 24]],
        stackwise_num_blocks=[1, 2],
        stackwise_num_filters=[[8], [16, 16]],
        stackwise_kernel_size=[[3], [3, 3]],
        stackwise_num_strides=[[2], [2, 1]],
        stackwise_se_ratio=[[None], [0.25, 0.25]],
        stackwise_activation=[["relu"], ["relu", "relu"]],
        stackwise_padding=[[1], [1, 1]],
        output_num_filters=16, depthwise_filters=8, depthwise_stride=2,
        depthwise_residual=False, last_layer_filter=16, squeeze_and_excite=0.5,
        image_shape=IMAGE, input_activation="relu", output_activation="relu",
        input_num_filters=8,
    )


def efficientnet():
    import keras_hub

    return keras_hub.models.EfficientNetBackbone(
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1],
        stackwise_input_filters=[8, 8], stackwise_output_filters=[8, 16],
        stackwise_expansion_ratios=[1, 2], stackwise_squeeze_and_excite_ratios=[0.0, 0.25],
        stackwise_strides=[1, 2], stackwise_block_types=["fused", "unfused"],
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        input_shape=IMAGE, activation="relu", num_features=32,
    )


def clip():
    import keras_hub

    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=8, hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=16,
        image_shape=IMAGE,
    )
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=VOCAB, embedding_dim=8, hidden_dim=8, num_layers=1, num_heads=2,
        intermediate_dim=16, max_sequence_length=SEQ,
    )
    return keras_hub.models.CLIPBackbone(vision, text, projection_dim=8)


def bart():
    import keras_hub

    return keras_hub.models.BartBackbone(
        vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=SEQ,
    )


def t5():
    import keras_hub

    return keras_hub.models.T5Backbone(
        vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
    )


def gpt2_causal_lm(preprocessor=True):
    """A `GPT2CausalLM` with its tokenizer and preprocessor, greedy sampling."""
    import keras_hub

    backbone = gpt2()
    pre = None
    if preprocessor:
        tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=GPT2_VOCAB, merges=GPT2_MERGES)
        pre = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer=tokenizer, sequence_length=SEQ)
    model = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=pre)
    model.compile(sampler="greedy")
    return model


def bert_classifier(preprocessor=True):
    """A `BertTextClassifier` (3 classes) that takes raw strings through its preprocessor."""
    import keras_hub

    pre = None
    if preprocessor:
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=BERT_VOCAB)
        pre = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=SEQ)
    return keras_hub.models.BertTextClassifier(backbone=bert(), num_classes=3, preprocessor=pre)


BACKBONES = {
    "bert": bert, "gpt2": gpt2, "llama": llama, "gemma": gemma, "vit": vit, "deit": deit,
    "resnet": resnet, "mobilenet": mobilenet, "efficientnet": efficientnet, "clip": clip,
    "bart": bart, "t5": t5,
}


def probe_data(model, batch=2, seed=0):
    """Inputs for `model`, by the name and dtype of each input: token ids below the
    vocabulary, masks of ones, images from a normal distribution."""
    rng = np.random.default_rng(seed)
    data = {}
    for tensor in model.inputs:
        name = tensor.name
        shape = [batch] + [SEQ if d is None else d for d in tensor.shape[1:]]
        if "mask" in name:
            data[name] = np.ones(shape, tensor.dtype)
        elif "segment" in name:
            data[name] = np.zeros(shape, tensor.dtype)
        elif "int" in str(tensor.dtype):
            data[name] = rng.integers(1, VOCAB, size=shape).astype(tensor.dtype)
        else:
            data[name] = rng.normal(size=shape).astype(tensor.dtype)
    if len(data) == 1 and not isinstance(model.input, dict):
        return next(iter(data.values()))
    return data
