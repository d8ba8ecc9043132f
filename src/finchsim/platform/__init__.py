"""How finchsim runs `cluster/`: rendering the manifests and the platforms that realise them."""
