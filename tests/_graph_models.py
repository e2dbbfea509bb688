"""Tiny models shared by the graph, layout, svg and GraphView tests."""

import keras


def branchy():
    """Two inputs, a shared layer, a raw op, a nested Sequential called twice, two outputs."""
    x = keras.Input((8,), name="x")
    y = keras.Input((3,), name="y")
    shared = keras.layers.Dense(8, name="shared")
    a = shared(x)
    b = shared(a)
    c = (a + b)[:, :4]
    inner = keras.Sequential(
        [keras.Input((4,), name="seq_in"), keras.layers.Dense(4, name="i1"),
         keras.layers.ReLU(name="i2")],
        name="seq",
    )
    e = inner(inner(c))
    out = keras.layers.Concatenate(name="cat")([e, y])
    return keras.Model([x, y], [out, b], name="branchy")


def nested_two_levels():
    """A functional model holding a functional block that holds a Sequential."""
    deep = keras.Sequential([keras.Input((6,), name="deep_in"),
                             keras.layers.Dense(6, name="deep_dense")],
                            name="deep")
    mid_in = keras.Input((6,), name="mid_in")
    mid_out = keras.layers.Add(name="mid_add")([deep(mid_in), mid_in])
    mid = keras.Model(mid_in, mid_out, name="mid")
    mid.trainable = False
    inp = keras.Input((6,), name="inp")
    h = keras.layers.Dense(6, name="pre")(inp)
    out = keras.layers.Dense(2, name="head", activation="softmax")(mid(h))
    return keras.Model(inp, out, name="outer")


def mobilenet():
    return keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(32, 32, 3))
