"""A script using a model whose chip arithmetic is not public: it must stop with a clear error."""

from spinnaker2 import hardware, snn

pop = snn.Population(size=2, neuron_model="izhikevich", params={}, name="izh")
net = snn.Network()
net.add(pop)
hardware.SpiNNaker2Chip().run(net, 10)
