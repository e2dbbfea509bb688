import pytest

from kerawidgets.errors import KerawidgetsError, UnknownActivationError, UnknownLayerError


def test_unknown_layer_suggests_close_names():
    error = UnknownLayerError("dense_l", ["dense_1", "dense_2", "conv2d"], "model 'm'")
    assert isinstance(error, KerawidgetsError)
    assert "'dense_1'" in str(error)
    assert "model 'm'" in str(error)
    with pytest.raises(KeyError):
        raise error


def test_unknown_activation_lists_known_ones():
    message = str(UnknownActivationError("gleu", ["gelu", "relu", "tanh"]))
    assert "'gelu'" in message
    assert "relu, tanh" in message or "gelu, relu, tanh" in message
    assert "register_activation" in message


def test_suggestions_ignore_case():
    message = str(UnknownActivationError("Gelu", ["elu", "gelu", "relu", "selu", "tanh"]))
    assert "Did you mean 'gelu'" in message  # the same letters first, not elu, selu, relu
    assert "'dense_1'" in str(UnknownLayerError("DENSE_1", ["dense_1", "conv"]))
